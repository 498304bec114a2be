/* charnn: train, evaluate and sample character-level RNN/LSTM/GRU language
 * models. Everything happens in the library; see src/cli/cli.c. */
#include "charnn/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
