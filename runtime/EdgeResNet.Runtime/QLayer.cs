namespace EdgeResNet.Runtime
{
    /// <summary>The integer operators. Conv covers Dense too (a 1x1 conv on a 1x1xC tensor).</summary>
    public enum QOp : byte { Conv = 1, MaxPool = 2, Add = 3, GlobalAvgPool = 4 }

    /// <summary>
    /// One entry of the quantised network's layer table: geometry, fixed-point formats and,
    /// for Conv, the per-output-channel tables. Tensor 0 is the network input; layer i writes
    /// tensor i + 1. Activations are int16 except a layer with <see cref="WideOutput"/> (the
    /// logits), which writes int32.
    /// </summary>
    public sealed class QLayer
    {
        public string Name = "";
        public QOp Op;
        public int Input0, Input1 = -1;
        public int InH, InW, InC, OutH, OutW, OutC;
        public int KernelH = 1, KernelW = 1, StrideH = 1, StrideW = 1, PadTop, PadLeft, PadBottom, PadRight;

        /// <summary>Fraction bits of the input(s) and of the output.</summary>
        public int InFrac, In1Frac, OutFrac;
        /// <summary>Signed width the output saturates to: the activation bits, or 32 for the logits.</summary>
        public int OutBits = 16;
        public bool Relu, WideOutput;

        // Conv only.
        public int WeightBits, WeightFrac;
        /// <summary>Fraction bits of the per-channel multiplier (0 in the folded scheme, where it is 1).</summary>
        public int MultiplierBits, MultiplierFrac;
        public int OffsetShift, OutShift;
        /// <summary>Bits the accumulator needs, proven from the weights and input format (sign included).</summary>
        public int AccumulatorBits;
        /// <summary>[OutC][WeightStride]: each row (ky, kx, ci) zero-padded to a multiple of 16, values within WeightBits.</summary>
        public short[] Weights = new short[0];
        public int[] Multipliers = new int[0];
        public int[] Offsets = new int[0];

        /// <summary>Where this layer's sections sit in the image it was read from, and their CRCs: set by the image
        /// reader only (the writer computes them into a <see cref="Flash.SectionPlacement"/> and leaves the layer alone).</summary>
        public long WeightsOffset { get; internal set; }
        public long BnOffset { get; internal set; }
        public uint WeightsCrc { get; internal set; }
        public uint BnCrc { get; internal set; }

        /// <summary>Bytes of one bit-packed weight row (one output channel) in flash; 0 for operators without weights.</summary>
        public int RowBytes => Op == QOp.Conv ? Flash.BitPacking.PackedBytes(ReduceSize, WeightBits) : 0;
        public long WeightsSize => (long)RowBytes * (Op == QOp.Conv ? OutC : 0);
        /// <summary>The BN section: int32 multipliers, then int32 offsets, per output channel.</summary>
        public int BnSize => Op == QOp.Conv ? 8 * OutC : 0;

        /// <summary>A 1x1 conv with a stride and no padding: it reads only every stride-th row and column of its input.</summary>
        public bool CanSubsample() =>
            Op == QOp.Conv && KernelH == 1 && KernelW == 1 && StrideH > 1 && StrideW == StrideH && PadTop == 0 && PadLeft == 0 && PadBottom == 0 && PadRight == 0
            && (InH - 1) / StrideH + 1 == OutH && (InW - 1) / StrideW + 1 == OutW;

        /// <summary>
        /// This layer (<see cref="CanSubsample"/>) as a stride-1 conv over the tensor of the rows and columns it reads: the
        /// same weights, tables and outputs. The streamed segment writes only that tensor.
        /// </summary>
        public QLayer Subsampled()
        {
            var view = (QLayer)MemberwiseClone();
            view.InH = OutH; view.InW = OutW; view.StrideH = view.StrideW = 1;
            return view;
        }

        public int ReduceSize => KernelH * KernelW * InC;
        /// <summary>Row length of <see cref="Weights"/>: ReduceSize rounded up to 16 (SIMD kernels read 16 at a time).</summary>
        public int WeightStride => (ReduceSize + 15) & ~15;
        public int InSize => InH * InW * InC;
        public int OutSize => OutH * OutW * OutC;
        public long Macs => Op == QOp.Conv ? (long)OutSize * ReduceSize : 0;
    }
}
