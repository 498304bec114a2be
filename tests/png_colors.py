# png_colors.py PNG [MIN]: count the distinct colours of a screenshot (every 4th
# pixel) and exit 0 when there are more than MIN (default 10): a blank page has one
# or two. Shared by the page tests (cli_analyze_html.sh, cli_report.sh); as a
# module, png_colors(path, step) gives (width, height, count) and
# png_color_set(path, step) the set of "#rrggbb" colours (cli_classify_eval.sh).
import struct, sys, zlib
def png_color_bytes(path, step=4):
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat = 8, []
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        elif kind == b'IDAT':
            idat.append(body)
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6), 'unexpected PNG format'
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    colors = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, w, step):
            colors.add(bytes(line[x * bpp:x * bpp + 3]))
        prev = line
    return w, h, colors
def png_colors(path, step=4):
    w, h, colors = png_color_bytes(path, step)
    return w, h, len(colors)
def png_color_set(path, step=1):
    return {'#%02x%02x%02x' % tuple(c) for c in png_color_bytes(path, step)[2]}
if __name__ == '__main__':
    w, h, n = png_colors(sys.argv[1])
    print('screenshot %dx%d, %d distinct colours' % (w, h, n))
    sys.exit(0 if n > (int(sys.argv[2]) if len(sys.argv) > 2 else 10) else 1)
