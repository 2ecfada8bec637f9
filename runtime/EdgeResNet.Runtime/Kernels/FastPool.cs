#if NET
using System;
using System.Numerics;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// <see cref="ReferenceKernels.MaxPool"/> with the channels of a pixel a hardware vector of int16 at a time
    /// (<see cref="Vector{T}"/>: 256-bit with AVX2, 128-bit NEON on arm64). A window tap outside the input
    /// is padding and counts as 0, exactly as in the reference kernel; the window starts from short.MinValue.
    /// </summary>
    public static class FastPool
    {
        public static void MaxPool(QLayer l, Span<short> input, int inRowBase, Span<short> output, int oyStart, int oyCount, int outRowBase)
        {
            int channels = l.OutC, n = Vector<short>.Count;
            int vectorEnd = Vector.IsHardwareAccelerated ? channels - channels % n : 0;
            var zero = Vector<short>.Zero;
            for (int oy = oyStart; oy < oyStart + oyCount; oy++)
                for (int ox = 0; ox < l.OutW; ox++)
                {
                    var y = output.Slice(((oy - outRowBase) * l.OutW + ox) * channels, channels);
                    bool padded = false;
                    y.Fill(short.MinValue);
                    for (int ky = 0; ky < l.KernelH; ky++)
                        for (int kx = 0; kx < l.KernelW; kx++)
                        {
                            int iy = oy * l.StrideH + ky - l.PadTop, ix = ox * l.StrideW + kx - l.PadLeft;
                            if (iy < 0 || iy >= l.InH || ix < 0 || ix >= l.InW) { padded = true; continue; }
                            var x = input.Slice(((iy - inRowBase) * l.InW + ix) * l.InC, channels);
                            int c = 0;
                            for (; c < vectorEnd; c += n)
                                Vector.Max(new Vector<short>(y.Slice(c, n)), new Vector<short>(x.Slice(c, n))).CopyTo(y.Slice(c, n));
                            for (; c < channels; c++) if (x[c] > y[c]) y[c] = x[c];
                        }
                    if (!padded) continue;
                    int d = 0;
                    for (; d < vectorEnd; d += n) Vector.Max(new Vector<short>(y.Slice(d, n)), zero).CopyTo(y.Slice(d, n));
                    for (; d < channels; d++) if (y[d] < 0) y[d] = 0;
                }
        }
    }
}
#endif
