/* The underfitting advice's decision (train_advice_underfitting, train.h): only once the
 * validation loss has stopped improving (less than 1% below the one three validations earlier)
 * and stays within 2% of the training loss. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "crnn/train.h"

static int advise(const float *v, int n, double train) { return train_advice_underfitting(v, n, train); }

int main(void) {
    /* still learning fast, losses close together (the 2x512 tiny-shakespeare run at epoch 3):
     * silent, however many validations */
    const float learning[] = {1.900f, 1.756f, 1.666f, 1.613f};
    CHECK(!advise(learning, 3, 1.60), "three validations: too early to tell");
    CHECK(!advise(learning, 4, 1.60), "1.613 is 8%% below 1.756: still learning");
    /* a plateau with validation ~ training loss: advise */
    const float flat[] = {1.900f, 1.520f, 1.515f, 1.512f, 1.510f};
    CHECK(advise(flat, 5, 1.50), "1.510 is 0.3%% below 1.520 three validations earlier, train 1.50");
    CHECK(!advise(flat, 4, 1.50), "1.512 is 20%% below 1.900: still learning");
    /* the boundary: exactly 1% better is improving; a hair less is a plateau */
    const float edge_improving[] = {2.0f, 1.99f, 1.985f, 1.979f}; /* 1.05% below 2.0 */
    const float edge_plateau[] = {2.0f, 1.995f, 1.992f, 1.981f};  /* 0.95% below 2.0 */
    CHECK(!advise(edge_improving, 4, 1.98), "1.05%% better: still learning");
    CHECK(advise(edge_plateau, 4, 1.98), "0.95%% better: stopped improving");
    /* rising validation loss counts as not improving */
    const float rising[] = {1.50f, 1.51f, 1.52f, 1.53f};
    CHECK(advise(rising, 4, 1.52), "rising, close to training: advise");
    /* a plateau but validation well apart from training: no underfitting advice */
    CHECK(!advise(flat, 5, 1.30), "val 1.510 is 16%% above train 1.30");
    CHECK(!advise(flat, 5, 1.60), "val 1.510 is 6%% below train 1.60");
    CHECK(advise(flat, 5, 1.53), "val 1.510 within 2%% of train 1.53");
    /* only the newest and the one three before it count: an older fast fall does not matter */
    const float old_fall[] = {4.0f, 3.0f, 2.0f, 1.50f, 1.50f, 1.499f, 1.498f};
    CHECK(advise(old_fall, 7, 1.50), "the last three validations are flat");
    CHECK(!advise(old_fall, 6, 1.50), "1.499 is 25%% below 2.0 three validations earlier");
    /* nothing to compare or nonsense: silent */
    CHECK(!advise(flat, 0, 1.5) && !advise(NULL, 0, 1.5), "no validations");
    const float with_nan[] = {1.5f, 1.5f, 1.5f, NAN};
    CHECK(!advise(with_nan, 4, 1.5), "a NaN validation loss");
    CHECK(!advise(flat, 5, 0.0) && !advise(flat, 5, NAN), "no training loss");
    return check_exit("test_train_advice");
}
