using System;
#if NET
using System.Numerics;
#endif
#if !NANOFRAMEWORK
using System.Runtime.InteropServices;
#endif

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// The tensors an image with 8-bit activations keeps between layers, one byte a value (<see cref="Engine.ExecutionPlan.ByteTensors"/>):
    /// a value is stored as its low byte and read back sign-extended, or zero-extended where the tensor is unsigned
    /// (9 out bits after a ReLU: [0, 255]). Both are exact for every value the layer's saturation lets through, so the
    /// kernels, which compute in int16, see the values the simulator has. Runs of <c>n</c> values, one per pixel at
    /// the buffers' strides, as the engine stages a tensor's channels for a kernel and stores its results.
    /// </summary>
    public static class ByteTensors
    {
        /// <summary>Whether the values of <paramref name="producer"/>'s output tensor are stored as unsigned bytes.</summary>
        public static bool IsUnsigned(QLayer producer) => producer.OutBits == 9;

        /// <summary>Run p: <paramref name="n"/> bytes at p x <paramref name="srcStride"/> of <paramref name="src"/>, extended into int16 at p x <paramref name="dstStride"/> of <paramref name="dst"/>.</summary>
        public static void Widen(Span<byte> src, int srcStride, bool unsigned, Span<short> dst, int dstStride, int pixels, int n)
        {
            for (int p = 0; p < pixels; p++)
            {
                int s = p * srcStride, d = p * dstStride, i = 0;
#if NET
                int lanes = Vector<byte>.Count;
                if (Vector.IsHardwareAccelerated)
                    for (; i + lanes <= n; i += lanes)
                    {
                        var bytes = new Vector<byte>(src.Slice(s + i, lanes));
                        Vector<short> lo, hi;
                        if (unsigned) { Vector.Widen(bytes, out var ulo, out var uhi); lo = Vector.AsVectorInt16(ulo); hi = Vector.AsVectorInt16(uhi); }
                        else Vector.Widen(Vector.AsVectorSByte(bytes), out lo, out hi);
                        lo.CopyTo(dst.Slice(d + i, lanes / 2));
                        hi.CopyTo(dst.Slice(d + i + lanes / 2, lanes / 2));
                    }
#endif
                if (unsigned) for (; i < n; i++) dst[d + i] = src[s + i];
                else for (; i < n; i++) dst[d + i] = (sbyte)src[s + i];
            }
        }

        /// <summary>Run p: <paramref name="n"/> int16 values at p x <paramref name="srcStride"/> of <paramref name="src"/>, their low bytes stored at p x <paramref name="dstStride"/> of <paramref name="dst"/>.</summary>
        public static void Narrow(Span<short> src, int srcStride, Span<byte> dst, int dstStride, int pixels, int n)
        {
            for (int p = 0; p < pixels; p++)
            {
                int s = p * srcStride, d = p * dstStride, i = 0;
#if NET
                int lanes = Vector<short>.Count;
                if (Vector.IsHardwareAccelerated)
                    for (; i + 2 * lanes <= n; i += 2 * lanes)
                        Vector.AsVectorByte(Vector.Narrow(new Vector<short>(src.Slice(s + i, lanes)), new Vector<short>(src.Slice(s + i + lanes, lanes))))
                            .CopyTo(dst.Slice(d + i, 2 * lanes));
#endif
                for (; i < n; i++) dst[d + i] = (byte)src[s + i];
            }
        }

        /// <summary><see cref="ReferenceKernels.GlobalAvgPool"/> of a tensor stored in bytes: each channel's sum over the pixels, then the reference's rounding (<see cref="ReferenceKernels.Mean"/>).</summary>
        public static void GlobalAvgPool(QLayer l, Span<byte> input, bool unsigned, Span<short> output)
        {
            int n = l.InH * l.InW, channels = l.InC;
            for (int c = 0; c < channels; c++)
            {
                long sum = 0;
                for (int p = 0; p < n; p++) sum += unsigned ? input[p * channels + c] : (sbyte)input[p * channels + c];
                output[c] = ReferenceKernels.Mean(l, sum);
            }
        }

#if !NANOFRAMEWORK
        /// <summary>The bytes of a run of arena values (the engine's arena is int16; a byte tensor takes half as many of them).</summary>
        public static Span<byte> AsBytes(Span<short> shorts) => MemoryMarshal.AsBytes(shorts);
#endif
    }
}
