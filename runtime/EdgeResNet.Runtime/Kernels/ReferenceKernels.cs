using System;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// The ground truth: one plain kernel per operator, 64-bit accumulation (exact), tensors HWC.
    /// Conv computes a band of output rows for a group of output channels, so a streaming
    /// executor can call it tile by tile; the result does not depend on the tiling.
    /// </summary>
    public static class ReferenceKernels
    {
        /// <param name="weights">The group's rows: [coCount][WeightStride].</param>
        /// <param name="output">The whole output tensor (int16, or int32 through <paramref name="wideOutput"/> for WideOutput layers).</param>
        public static void Conv(QLayer l, Span<short> input, Span<short> weights, int coStart, int coCount, int oyStart, int oyCount,
            Span<short> output, Span<int> wideOutput)
        {
            int stride = l.WeightStride;
            for (int oy = oyStart; oy < oyStart + oyCount; oy++)
                for (int ox = 0; ox < l.OutW; ox++)
                    for (int c = 0; c < coCount; c++)
                    {
                        long acc = 0;
                        int wRow = c * stride;
                        for (int ky = 0; ky < l.KernelH; ky++)
                        {
                            int iy = oy * l.StrideH + ky - l.PadTop;
                            if (iy < 0 || iy >= l.InH) continue; // zero padding
                            for (int kx = 0; kx < l.KernelW; kx++)
                            {
                                int ix = ox * l.StrideW + kx - l.PadLeft;
                                if (ix < 0 || ix >= l.InW) continue;
                                int xi = (iy * l.InW + ix) * l.InC, wi = wRow + (ky * l.KernelW + kx) * l.InC;
                                for (int ci = 0; ci < l.InC; ci++) acc += (long)weights[wi + ci] * input[xi + ci];
                            }
                        }
                        Store(l, acc, coStart + c, (oy * l.OutW + ox) * l.OutC + coStart + c, output, wideOutput);
                    }
        }

        /// <summary>Requantises one accumulator of output channel <paramref name="co"/> and stores it at <paramref name="index"/>.</summary>
        public static void Store(QLayer l, long acc, int co, int index, Span<short> output, Span<int> wideOutput)
        {
            long y = FixedPoint.Requantize(acc, l.Multipliers[co], l.Offsets[co], l.OffsetShift, l.OutShift, l.Relu);
            y = FixedPoint.Saturate(y, l.OutBits);
            if (l.WideOutput) wideOutput[index] = (int)y;
            else output[index] = (short)y;
        }

        /// <summary>Max pooling; padding positions count as 0 (they come from zero padding).</summary>
        public static void MaxPool(QLayer l, Span<short> input, Span<short> output)
        {
            for (int oy = 0; oy < l.OutH; oy++)
                for (int ox = 0; ox < l.OutW; ox++)
                    for (int c = 0; c < l.OutC; c++)
                    {
                        int m = short.MinValue;
                        for (int ky = 0; ky < l.KernelH; ky++)
                            for (int kx = 0; kx < l.KernelW; kx++)
                            {
                                int iy = oy * l.StrideH + ky - l.PadTop, ix = ox * l.StrideW + kx - l.PadLeft;
                                int v = iy < 0 || iy >= l.InH || ix < 0 || ix >= l.InW ? 0 : input[(iy * l.InW + ix) * l.InC + c];
                                if (v > m) m = v;
                            }
                        output[(oy * l.OutW + ox) * l.OutC + c] = (short)m;
                    }
        }

        /// <summary>Both inputs rescaled to the output format, summed, saturated, then ReLU.</summary>
        public static void Add(QLayer l, Span<short> a, Span<short> b, Span<short> output)
        {
            int sa = l.InFrac - l.OutFrac, sb = l.In1Frac - l.OutFrac;
            for (int i = 0; i < l.OutSize; i++)
            {
                long y = FixedPoint.RoundShift(a[i], sa) + FixedPoint.RoundShift(b[i], sb);
                if (l.Relu && y < 0) y = 0;
                output[i] = (short)FixedPoint.Saturate(y, l.OutBits);
            }
        }

        /// <summary>Mean over H x W per channel, in the output format.</summary>
        public static void GlobalAvgPool(QLayer l, Span<short> input, Span<short> output)
        {
            int n = l.InH * l.InW, d = l.OutFrac - l.InFrac;
            for (int c = 0; c < l.InC; c++)
            {
                long sum = 0;
                for (int p = 0; p < n; p++) sum += input[p * l.InC + c];
                long y = d >= 0 ? FixedPoint.RoundDiv(sum << d, n) : FixedPoint.RoundDiv(sum, (long)n << -d);
                output[c] = (short)FixedPoint.Saturate(y, l.OutBits);
            }
        }
    }
}
