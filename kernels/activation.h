/* The cells' activations, written once for the CPU kernels (kernels/cpu_kernels.inc) and the
 * CUDA kernels (kernels/cuda_kernels.cu), so that both backends apply the same function:
 * CRNN_HD makes them host and device functions under nvcc, static inline functions elsewhere
 * (as in include/crnn/philox.h). Float only: the double build of the CPU kernels (the gradient
 * checks) uses the C library's tanh. */
#ifndef CRNN_ACTIVATION_H
#define CRNN_ACTIVATION_H

#ifndef CRNN_HD
#ifdef __CUDACC__
#define CRNN_HD __host__ __device__ __forceinline__
#else
#define CRNN_HD static inline
#endif
#endif

/* tanh as a rational function (the minimax fit Eigen uses), clamped where it reaches +-1 in
 * float; branch-free so that the CPU loops vectorise. Absolute error under 4e-7. */
CRNN_HD float crnn_tanh_f(float x) {
    const float c = 7.90531110763549805f;
    x = x > c ? c : (x < -c ? -c : x);
    float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

/* sigmoid(x) = (1 + tanh(x/2)) / 2, through crnn_tanh_f. */
CRNN_HD float crnn_sigmoid_f(float x) { return 0.5f + 0.5f * crnn_tanh_f(0.5f * x); }

#endif
