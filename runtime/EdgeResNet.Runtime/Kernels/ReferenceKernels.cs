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
        /// <param name="weights">Rows [tile.CoCount][WeightStride] of the tile's channels.</param>
        /// <param name="multipliers">Per output channel of the layer (indexed by absolute channel), as <paramref name="offsets"/>.</param>
        /// <param name="wideOutput">Used instead of <paramref name="output"/> by the WideOutput (logits) layer.</param>
        public static void Conv(QLayer l, ConvTile t, Span<short> input, Span<short> weights, Span<int> multipliers, Span<int> offsets,
            Span<short> output, Span<int> wideOutput)
        {
            int stride = l.WeightStride;
            for (int oy = t.OyStart; oy < t.OyStart + t.OyCount; oy++)
                for (int ox = 0; ox < l.OutW; ox++)
                    for (int c = 0; c < t.CoCount; c++)
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
                                int xi = ((iy - t.InRowBase) * l.InW + ix) * l.InC, wi = wRow + (ky * l.KernelW + kx) * l.InC;
                                for (int ci = 0; ci < l.InC; ci++) acc += (long)weights[wi + ci] * input[xi + ci];
                            }
                        }
                        int co = t.CoStart + c;
                        Store(l, acc, multipliers[co], offsets[co], t.OutIndex(l, oy, ox, co), output, wideOutput);
                    }
        }

        /// <summary>Requantises one accumulator with its channel's multiplier and offset and stores it at <paramref name="index"/>.</summary>
        public static void Store(QLayer l, long acc, int multiplier, int offset, int index, Span<short> output, Span<int> wideOutput)
        {
            long y = FixedPoint.Saturate(FixedPoint.Requantize(acc, multiplier, offset, l.OffsetShift, l.OutShift, l.Relu), l.OutBits);
            if (l.WideOutput) wideOutput[index] = (int)y;
            else output[index] = (short)y;
        }

        /// <summary>Max pooling of output rows [oyStart, oyStart+oyCount); padding counts as 0 (it is zero padding).
        /// The input buffer starts at input row <paramref name="inRowBase"/>, the output buffer at output row <paramref name="outRowBase"/>.</summary>
        public static void MaxPool(QLayer l, Span<short> input, int inRowBase, Span<short> output, int oyStart, int oyCount, int outRowBase)
        {
            for (int oy = oyStart; oy < oyStart + oyCount; oy++)
                for (int ox = 0; ox < l.OutW; ox++)
                    for (int c = 0; c < l.OutC; c++)
                    {
                        int m = short.MinValue;
                        for (int ky = 0; ky < l.KernelH; ky++)
                            for (int kx = 0; kx < l.KernelW; kx++)
                            {
                                int iy = oy * l.StrideH + ky - l.PadTop, ix = ox * l.StrideW + kx - l.PadLeft;
                                int v = iy < 0 || iy >= l.InH || ix < 0 || ix >= l.InW ? 0 : input[((iy - inRowBase) * l.InW + ix) * l.InC + c];
                                if (v > m) m = v;
                            }
                        output[((oy - outRowBase) * l.OutW + ox) * l.OutC + c] = (short)m;
                    }
        }

        /// <summary>Both inputs rescaled to the output format, summed, saturated, then ReLU.</summary>
        public static void Add(QLayer l, Span<short> a, Span<short> b, Span<short> output)
        {
            for (int i = 0; i < l.OutSize; i++) output[i] = AddOne(l, a[i], b[i]);
        }

        /// <summary>One element of Add: both inputs to the output format, summed, ReLU, saturated.</summary>
        public static short AddOne(QLayer l, short a, short b)
        {
            long y = FixedPoint.RoundShift(a, l.InFrac - l.OutFrac) + FixedPoint.RoundShift(b, l.In1Frac - l.OutFrac);
            if (l.Relu && y < 0) y = 0;
            return (short)FixedPoint.Saturate(y, l.OutBits);
        }

        /// <summary>Mean over H x W per channel, in the output format.</summary>
        public static void GlobalAvgPool(QLayer l, Span<short> input, Span<short> output)
        {
            for (int c = 0; c < l.InC; c++) output[c] = Mean(l, ChannelSum(l, input, c));
        }

        /// <summary>Channel <paramref name="c"/>'s sum over the global pool's H x W pixels.</summary>
        public static long ChannelSum(QLayer l, Span<short> input, int c)
        {
            long sum = 0;
            for (int p = 0, n = l.InH * l.InW; p < n; p++) sum += input[p * l.InC + c];
            return sum;
        }

        /// <summary>A channel's mean from its <paramref name="sum"/> over the global pool's pixels, rounded into the output's format and saturated.</summary>
        public static short Mean(QLayer l, long sum)
        {
            int n = l.InH * l.InW, d = l.OutFrac - l.InFrac;
            long y = d >= 0 ? FixedPoint.RoundDiv(sum << d, n) : FixedPoint.RoundDiv(sum, (long)n << -d);
            return (short)FixedPoint.Saturate(y, l.OutBits);
        }
    }
}
