using System;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Kernels;

namespace EdgeResNet.Runtime.Engine
{
    /// <summary>
    /// The on-device classifier: runs the <see cref="ExecutionPlan"/> over one frame, streaming
    /// each conv's weights from flash one output-channel group at a time. Every buffer is
    /// allocated here, once; <see cref="Run()"/> allocates nothing.
    /// </summary>
    public sealed class InferenceEngine
    {
        readonly FlashImage _image;
        readonly QLayer[] _layers;
        public ExecutionPlan Plan { get; }

        readonly short[] _arena;            // tensor area | step scratch | im2col row(s)
        readonly short[] _weights, _hi, _lo; // one weight group (and its split planes for weights over 10 bits)
        readonly short[] _row;               // one weight row, for kernels whose layout is not rows
        readonly byte[] _packed;             // the group's packed bytes as read from flash
        readonly int[] _multipliers, _offsets;
        readonly long[] _acc;
        readonly int[] _logits;

        public InferenceEngine(FlashImage image, ExecutionPlan plan)
        {
            _image = image;
            _layers = image.Model.Layers;
            Plan = plan;
            _arena = new short[plan.ArenaShorts];
            _weights = new short[plan.WeightGroupShorts];
            _hi = plan.SplitWeights ? new short[plan.WeightGroupShorts] : new short[0];
            _lo = plan.SplitWeights ? new short[plan.WeightGroupShorts] : new short[0];
            _row = new short[plan.UnpackRowShorts];
            _packed = new byte[plan.MaxRowBytesGroup];
            _multipliers = new int[plan.MaxChannels];
            _offsets = new int[plan.MaxChannels];
            _acc = new long[plan.MaxAccLongs];
            _logits = new int[image.Model.Classes];
        }

        public InferenceEngine(FlashImage image) : this(image, new ExecutionPlan(image.Model)) { }

        /// <summary>Which conv kernel runs: the SIMD one where the CPU has it, else the reference.</summary>
        public string ConvKernel => ConvDispatch.Describe(Plan.SimdKernels);

        /// <summary>Bytes of RAM the engine holds: arena, weight group buffers, BN tables, accumulators, logits.</summary>
        public long RamBytes => Plan.RamBytes;

        /// <summary>Where the caller writes the quantised input frame (HWC, the image's input format).</summary>
        public Span<short> Input => new Span<short>(_arena, Plan.Steps[0].InputOffset, _image.Model.InputSize);

        /// <summary>The logits of the last <see cref="Run()"/> (format: the last layer's OutFrac).</summary>
        public int[] Logits => _logits;

        /// <summary>Array form for hosts whose compiler lacks Span (Mono's mcs).</summary>
        public int[] Run(short[] input) => Run(new Span<short>(input));

        public int[] Run(Span<short> input)
        {
            input.CopyTo(Input);
            Run();
            return _logits;
        }

        public void Run()
        {
            _afterLayer = null;
            RunSteps();
        }

        /// <summary>
        /// A frame as <see cref="Run()"/>, calling <paramref name="afterLayer"/> with a layer's index each time a piece
        /// of it (a band, a channel group) is done: whatever happened since the previous call belongs to that layer
        /// (profiling: time and flash bytes per layer, or per step).
        /// </summary>
        public void RunProfiled(Action<int> afterLayer)
        {
            _afterLayer = afterLayer;
            try { RunSteps(); }
            finally { _afterLayer = null; }
        }

        Action<int>? _afterLayer;

        void RunSteps()
        {
            foreach (var step in Plan.Steps)
            {
                if (step.Kind == StepKind.Stem) RunStem(step);
                else if (step.Kind == StepKind.Bottleneck) RunBottleneck(step);
                else RunHead(step);
            }
        }

        Span<short> Tensor(int offset, int size) => new Span<short>(_arena, offset, size);
        Span<short> Scratch(PlanStep s, int offset, int size) => new Span<short>(_arena, s.ScratchOffset + offset, size);

        void RunStem(PlanStep s)
        {
            var conv = _layers[s.A]; var pool = _layers[s.Pool];
            var input = Tensor(s.InputOffset, conv.InSize);
            var output = Tensor(s.OutputOffset, pool.OutSize);
            var ring = Scratch(s, 0, s.RingShorts);
            int rowSize = conv.OutW * conv.OutC, ringBase = 0, ringEnd = 0;
            for (int m0 = 0; m0 < pool.OutH; m0 += s.BandRows)
            {
                int m1 = Math.Min(pool.OutH, m0 + s.BandRows);
                ExecutionPlan.InputRows(pool, m0, m1, out int lo, out int hi);
                Slide(ring, rowSize, ref ringBase, ref ringEnd, lo);
                ConvRows(s.A, input, 0, ringEnd, hi, ring, ringBase, 0, conv.OutC, 0, conv.OutC, default);
                ringEnd = hi;
                MaxPool(pool, ring, ringBase, output, m0, m1 - m0);
                _afterLayer?.Invoke(s.Pool);
            }
        }

        void RunBottleneck(PlanStep s)
        {
            QLayer a = _layers[s.A], b = _layers[s.B], c = _layers[s.C], add = _layers[s.Add];
            QLayer? p = s.P >= 0 ? _layers[s.P] : null;
            var x = Tensor(s.InputOffset, a.InSize);
            var y = Tensor(s.OutputOffset, c.OutSize);
            var ring = Scratch(s, 0, s.RingShorts);
            var band = Scratch(s, s.RingShorts, s.BandShorts);
            var shortcut = Scratch(s, s.RingShorts + s.BandShorts, s.ShortcutShorts);
            var group = Scratch(s, s.RingShorts + s.BandShorts + s.ShortcutShorts, s.GroupShorts);
            int aRow = a.OutW * a.OutC, aBase = 0, aEnd = 0, cId = s.C + 1, w = c.OutW, channels = c.OutC;
            bool cFirst = add.Input0 == cId;
            int gSize = Plan.GroupSize(c);
            for (int r0 = 0; r0 < c.OutH; r0 += s.BandRows)
            {
                int r1 = Math.Min(c.OutH, r0 + s.BandRows);
                ExecutionPlan.InputRows(b, r0, r1, out int lo, out int hi);
                Slide(ring, aRow, ref aBase, ref aEnd, lo);
                ConvRows(s.A, x, 0, Math.Max(aEnd, lo), hi, ring, aBase, 0, a.OutC, 0, a.OutC, default);
                aEnd = hi;
                ConvRows(s.B, ring, aBase, r0, r1, band, r0, 0, b.OutC, 0, b.OutC, default);
                if (p != null) ConvRows(s.P, x, 0, r0, r1, shortcut, r0, 0, channels, 0, channels, default);
                for (int co = 0; co < channels; co += gSize)
                {
                    int n = Math.Min(gSize, channels - co);
                    ConvRows(s.C, band, r0, r0, r1, group, r0, co, n, co, co + n, default);
                    for (int r = r0; r < r1; r++)
                        for (int ox = 0; ox < w; ox++)
                        {
                            int gi = ((r - r0) * w + ox) * n, yi = (r * w + ox) * channels + co;
                            var sv = p != null ? shortcut.Slice(((r - r0) * w + ox) * channels + co, n) : x.Slice(yi, n);
                            var cv = group.Slice(gi, n);
                            AddRow(add, cFirst ? cv : sv, cFirst ? sv : cv, y.Slice(yi, n));
                        }
                    _afterLayer?.Invoke(s.Add);
                }
            }
        }

        void RunHead(PlanStep s)
        {
            var gap = _layers[s.Gap]; var fc = _layers[s.Fc];
            var pooled = Scratch(s, 0, gap.OutC);
            ReferenceKernels.GlobalAvgPool(gap, Tensor(s.InputOffset, gap.InSize), pooled);
            _afterLayer?.Invoke(s.Gap);
            ConvRows(s.Fc, pooled, 0, 0, 1, default, 0, 0, fc.OutC, 0, fc.OutC, _logits);
        }

        /// <summary>Keeps rows [lo, end) of a row window at its front (memmove) so new rows follow them.</summary>
        static void Slide(Span<short> ring, int rowSize, ref int baseRow, ref int endRow, int lo)
        {
            if (lo <= baseRow) return;
            int keep = Math.Max(0, endRow - lo);
            if (keep > 0) ring.Slice((lo - baseRow) * rowSize, keep * rowSize).CopyTo(ring);
            baseRow = lo;
            if (endRow < lo) endRow = lo;
        }

        /// <summary>
        /// Output rows [oy0, oy1) and channels [coStart, coEnd) of conv layer <paramref name="layer"/>, streaming
        /// its weights and BN tables one channel group at a time. The output buffer starts at output
        /// row <paramref name="outRowBase"/> and channel <paramref name="outFirstChannel"/>, with
        /// <paramref name="outChannelStride"/> values per pixel.
        /// </summary>
        void ConvRows(int layer, Span<short> input, int inRowBase, int oy0, int oy1, Span<short> output, int outRowBase,
            int outFirstChannel, int outChannelStride, int coStart, int coEnd, Span<int> wide)
        {
            if (oy1 <= oy0) return;
            var l = _layers[layer];
            int g = Plan.GroupSize(l);
            var kernel = Plan.Kernels[layer];
            int im2colRow = ConvDispatch.ScratchShortsPerRow(l, kernel), block = ConvDispatch.ChannelBlock(kernel);
            for (int co = coStart; co < coEnd; co += g)
            {
                int n = Math.Min(g, coEnd - co);
                _image.ReadBnTables(l, co, n, _multipliers, _offsets, _packed);
                var weights = new Span<short>(_weights, 0, WeightLayout.Shorts(n, l.WeightStride, block));
                _image.ReadWeightRows(l, co, n, _packed, weights, block, _row);
                int rowsPerCall = Math.Max(1, Math.Min(im2colRow == 0 ? oy1 - oy0 : Plan.Im2ColShorts / im2colRow, _acc.Length / (l.OutW * n)));
                for (int oy = oy0; oy < oy1; oy += rowsPerCall)
                {
                    var tile = new ConvTile
                    {
                        CoStart = co, CoCount = n, OyStart = oy, OyCount = Math.Min(rowsPerCall, oy1 - oy),
                        InRowBase = inRowBase, OutRowBase = outRowBase, OutChannelBase = co - outFirstChannel, OutChannelStride = outChannelStride,
                    };
                    ConvDispatch.Run(kernel, l, tile, input, weights, _multipliers, _offsets, output, wide, _hi, _lo,
                        new Span<short>(_arena, Plan.TensorAreaShorts + Plan.ScratchShorts, Plan.Im2ColShorts), _acc);
                }
            }
            _afterLayer?.Invoke(layer);
        }

        void MaxPool(QLayer pool, Span<short> input, int inRowBase, Span<short> output, int oyStart, int oyCount)
        {
#if NET
            if (Plan.SimdKernels) { FastPool.MaxPool(pool, input, inRowBase, output, oyStart, oyCount, 0); return; }
#endif
            ReferenceKernels.MaxPool(pool, input, inRowBase, output, oyStart, oyCount, 0);
        }

        void AddRow(QLayer add, Span<short> a, Span<short> b, Span<short> y)
        {
#if NET
            if (Plan.SimdKernels) { FastAdd.AddRow(add, a, b, y); return; }
#endif
            for (int i = 0; i < y.Length; i++) y[i] = ReferenceKernels.AddOne(add, a[i], b[i]);
        }
    }
}
