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
    public sealed class InferenceEngine : IDisposable
    {
        readonly FlashImage _image;
        readonly QLayer[] _layers;
        public ExecutionPlan Plan { get; }

        readonly short[] _arena;            // tensor area | step scratch | im2col rows (one set per thread), from _base on
        readonly int _base;
        readonly Lane[] _lanes;             // one per thread
        readonly int[] _multipliers, _offsets; // indexed by channel: threads fill disjoint channels
        readonly int[] _logits;
        readonly int[] _ringBase, _ringEnd;  // per step: the rows its ring holds (A rows; the stem's conv rows)
        readonly StreamState? _stream;       // where the streamed segment stands, when the plan has one
#if !NANOFRAMEWORK
        readonly Crew? _crew;               // the other threads, when the plan has more than one
#endif

        /// <summary>One thread's buffers: a weight group (and its split planes), the unpack row, the packed bytes, the accumulators.</summary>
        sealed class Lane
        {
            public readonly short[] Weights, Hi, Lo, Row;
            public readonly byte[] Packed;
            public readonly long[] Acc;
            public readonly int Index, Im2ColOffset;

            public Lane(ExecutionPlan plan, int index)
            {
                Index = index;
                Weights = new short[plan.WeightGroupShorts];
                Hi = plan.SplitWeights ? new short[plan.WeightGroupShorts] : new short[0];
                Lo = plan.SplitWeights ? new short[plan.WeightGroupShorts] : new short[0];
                Row = new short[plan.UnpackRowShorts];
                Packed = new byte[plan.MaxRowBytesGroup];
                Acc = new long[plan.MaxAccLongs];
                Im2ColOffset = plan.Im2ColOffset(index);
            }
        }

        /// <param name="plan">Its <see cref="ExecutionPlan.Threads"/> threads run every frame (the caller's and T - 1 of the engine's own);
        /// more than one needs a flash that several threads may read at once (a file or memory, not a bus driver).</param>
        public InferenceEngine(FlashImage image, ExecutionPlan plan)
        {
            _image = image;
            _layers = plan.Layers;
            Plan = plan;
            _ringBase = new int[plan.Steps.Length];
            _ringEnd = new int[plan.Steps.Length];
            _stream = plan.SegmentEnd >= 0 ? new StreamState(plan) : null;
            _arena = NewArena(plan, out _base);
            _lanes = new Lane[plan.Threads];
            for (int t = 0; t < plan.Threads; t++) _lanes[t] = new Lane(plan, t);
            _multipliers = new int[plan.MaxChannels];
            _offsets = new int[plan.MaxChannels];
            _logits = new int[image.Model.Classes];
#if !NANOFRAMEWORK
            if (plan.Threads > 1) _crew = new Crew(plan.Threads, Work);
#else
            if (plan.Threads > 1) throw new ArgumentException("the nanoFramework build runs one thread: plan the image with threads: 1");
#endif
        }

        public InferenceEngine(FlashImage image) : this(image, new ExecutionPlan(image.Model)) { }

        /// <summary>Stops the engine's own threads (a one-thread engine has none).</summary>
        public void Dispose()
        {
#if !NANOFRAMEWORK
            _crew?.Dispose();
#endif
        }

        /// <summary>Which conv kernel runs: the SIMD one where the CPU has it, else the reference.</summary>
        public string ConvKernel => ConvDispatch.Describe(Plan.SimdKernels);

        /// <summary>Bytes of everything the engine allocated (<see cref="ExecutionPlan.RamBytes"/>).</summary>
        public long RamBytes => Plan.RamBytes;

        /// <summary>The logits of the last frame (format: the last layer's OutFrac).</summary>
        public int[] Logits => _logits;

        /// <summary>Array form for hosts whose compiler lacks Span (Mono's mcs).</summary>
        public int[] Run(short[] input) => Run(new ReadOnlySpan<short>(input));

        /// <summary>
        /// One frame from a whole quantised input (HWC, the image's input format) the caller holds: copied into the arena,
        /// or, where the plan streams its input, row by row into its window as the stem reads them.
        /// </summary>
        public int[] Run(ReadOnlySpan<short> input)
        {
            _afterLayer = null;
            RunSteps(input, null);
            return _logits;
        }

        /// <summary>One frame whose input rows <paramref name="source"/> makes as the engine asks for them (the board's <see cref="Input.FramePreprocessor"/>).</summary>
        public int[] Run(Input.IInputRows source)
        {
            _afterLayer = null;
            RunSteps(default, source);
            return _logits;
        }

        /// <summary>
        /// A frame as <see cref="Run(ReadOnlySpan{short})"/>, calling <paramref name="afterLayer"/> with a layer's index each time a piece
        /// of it (a band, a channel group) is done: whatever happened since the previous call belongs to that layer
        /// (profiling: time and flash bytes per layer, or per step).
        /// </summary>
        public void RunProfiled(ReadOnlySpan<short> input, Action<int> afterLayer)
        {
            _afterLayer = afterLayer;
            try { RunSteps(input, null); }
            finally { _afterLayer = null; }
        }

        Action<int>? _afterLayer;

        void RunSteps(ReadOnlySpan<short> input, Input.IInputRows? source)
        {
            var model = _image.Model;
            if (source == null && input.Length != model.InputSize)
                throw new ArgumentException($"the input has {input.Length} values; the image takes {model.InputH}x{model.InputW}x{model.InputC} = {model.InputSize}");
            if (_stream != null) RunSegment(_stream, input, source);
            else if (source != null) source.WriteRows(0, model.InputH, Arena(Plan.Steps[0].InputOffset, model.InputSize));
            else input.CopyTo(Arena(Plan.Steps[0].InputOffset, model.InputSize));
            for (int k = Plan.SegmentEnd + 1; k < Plan.Steps.Length; k++)
            {
                var step = Plan.Steps[k];
                _ringBase[k] = _ringEnd[k] = 0;
                if (step.Kind == StepKind.Head) { RunHead(step); continue; }
                int rows = step.Kind == StepKind.Stem ? _layers[step.Pool].OutH : _layers[step.C].OutH;
                for (int r0 = 0; r0 < rows; r0 += step.BandRows)
                    RunBand(k, r0, Math.Min(rows, r0 + step.BandRows), 0, 0);
            }
        }

        /// <summary>
        /// The streamed segment, band by band in the plan's order. Before each band every window drops the rows no one
        /// reads again (<see cref="StreamState.Low"/> and <see cref="StreamState.MoveBase"/>, the code that sized it), keeping the rest at its start, and
        /// a stem band gets the input rows it reads next; after a band of the last step, its rows go to the sink.
        /// </summary>
        void RunSegment(StreamState state, ReadOnlySpan<short> input, Input.IInputRows? source)
        {
            state.Reset();
            for (int k = 0; k <= Plan.SegmentEnd; k++) _ringBase[k] = _ringEnd[k] = 0;
            for (int band = 0; band < Plan.BandStep.Length; band++)
            {
                for (int w = 0; w < Plan.Windows.Length; w++)
                {
                    var window = Plan.Windows[w];
                    if (window.Whole) continue; // its rows stay where the sink wrote them
                    Slide(Arena(window.Offset, window.Shorts), window.RowShorts, ref state.WindowBase[w], ref state.WindowEnd[w], state.Low(w));
                }
                int k = Plan.BandStep[band], r0 = Plan.BandStart[band], r1 = Plan.BandEnd[band];
                var s = Plan.Steps[k];
                int inBase = state.WindowBase[s.InWindow], outBase = state.WindowBase[s.OutWindow];
                state.Fetch(band, out int from, out int to);
                if (to > from)
                {
                    var window = Plan.Windows[s.InWindow];
                    var rows = Arena(window.Offset + (from - inBase) * window.RowShorts, (to - from) * window.RowShorts);
                    if (source != null) source.WriteRows(from, to - from, rows);
                    else input.Slice(from * window.RowShorts, rows.Length).CopyTo(rows);
                }
                _firstBand = state.Produced[k] == 0;
                RunBand(k, r0, r1, inBase, outBase);
                _firstBand = true;
                if (s.SinkWindow >= 0)
                {
                    var whole = Plan.Windows[s.SinkWindow];
                    Sink(s, r0, r1, outBase, Plan.Steps[k + 1], Plan.SinkStrideInto(k + 1), whole.Offset, whole.Shorts);
                }
                if (k == Plan.SegmentEnd) Sink(s, r0, r1, outBase, Plan.Steps[k + 1], Plan.SinkStride, Plan.SinkOffset, Plan.SinkShorts);
                state.Done(band);
            }
        }

        /// <summary>
        /// Rows [r0, r1) of a step that ends the segment or its first phase, every <paramref name="stride"/>-th row and column,
        /// into the whole input of step <paramref name="nextStep"/> at arena <paramref name="offset"/>.
        /// </summary>
        void Sink(PlanStep s, int r0, int r1, int rowBase, PlanStep nextStep, int stride, int offset, int shorts)
        {
            var y = _layers[s.Kind == StepKind.Stem ? s.Pool : s.C];
            var next = _layers[nextStep.A]; // its subsampled view: the sink's shape
            int channels = y.OutC;
            var window = Plan.Windows[s.OutWindow];
            for (int r = (r0 + stride - 1) / stride * stride; r < r1; r += stride)
                for (int x = 0; x < next.InW; x++)
                    CopyValues(window.Offset, window.Shorts, ((r - rowBase) * y.OutW + x * stride) * channels, offset, shorts, ((r / stride) * next.InW + x) * channels, channels);
        }

        /// <summary>
        /// <paramref name="count"/> values of a tensor kept between layers, from value <paramref name="fromIndex"/> of the tensor at arena
        /// <paramref name="from"/> (<paramref name="fromShorts"/> long) to value <paramref name="toIndex"/> of the one at <paramref name="to"/>: bytes or int16 (<see cref="ExecutionPlan.ByteTensors"/>).
        /// </summary>
        void CopyValues(int from, int fromShorts, int fromIndex, int to, int toShorts, int toIndex, int count)
        {
#if !NANOFRAMEWORK
            if (Plan.ByteTensors) { TensorBytes(from, fromShorts).Slice(fromIndex, count).CopyTo(TensorBytes(to, toShorts).Slice(toIndex, count)); return; }
#endif
            Arena(from, fromShorts).Slice(fromIndex, count).CopyTo(Arena(to, toShorts).Slice(toIndex, count));
        }

        /// <summary>
        /// Output rows [r0, r1) of step <paramref name="k"/> (stem or bottleneck). Its input and output are whole tensors
        /// (row bases 0) or the windows of the segment, whose first rows are <paramref name="inBase"/> and <paramref name="outBase"/>.
        /// </summary>
        void RunBand(int k, int r0, int r1, int inBase, int outBase)
        {
            var s = Plan.Steps[k];
            // the network input is int16; the stem's output and the blocks' tensors are kept one byte a value where the plan says so
            int inLength = s.InWindow >= 0 ? Plan.Windows[s.InWindow].Shorts : s.Kind == StepKind.Stem ? _layers[s.A].InSize : Plan.TensorShorts(_layers[s.A].InSize);
            int outLength = s.OutWindow >= 0 ? Plan.Windows[s.OutWindow].Shorts : Plan.TensorShorts(s.Kind == StepKind.Stem ? _layers[s.Pool].OutSize : _layers[s.C].OutSize);
            if (s.Kind == StepKind.Stem) StemBand(k, r0, r1, inLength, inBase, outLength, outBase);
            else BottleneckBand(k, r0, r1, inLength, inBase, outLength, outBase);
        }

        Span<short> Arena(int offset, int size) => new Span<short>(_arena, _base + offset, size);
#if !NANOFRAMEWORK
        /// <summary>The bytes of a tensor kept one byte a value, <paramref name="shorts"/> arena values from <paramref name="offset"/>.</summary>
        Span<byte> TensorBytes(int offset, int shorts) => ByteTensors.AsBytes(Arena(offset, shorts));
#endif

        /// <summary>
        /// The arena. With several threads it starts on a cache line (64 B, in memory the GC never moves): the threads write
        /// neighbouring channels of one pixel, and a line shared across their boundary would bounce between the cores.
        /// </summary>
        static short[] NewArena(ExecutionPlan plan, out int start)
        {
            start = 0;
#if NET
            if (plan.Threads > 1)
            {
                var arena = GC.AllocateArray<short>(plan.ArenaShorts + ExecutionPlan.ArenaAlignShorts, pinned: true);
                unsafe
                {
                    fixed (short* p = arena) start = (int)((64 - (long)p % 64) % 64 / 2);
                }
                return arena;
            }
#endif
            return new short[plan.ArenaShorts + (plan.Threads > 1 ? ExecutionPlan.ArenaAlignShorts : 0)];
        }

        void StemBand(int k, int m0, int m1, int inLength, int inBase, int outLength, int outBase)
        {
            var s = Plan.Steps[k];
            var conv = _layers[s.A]; var pool = _layers[s.Pool];
            var ring = Arena(s.RingOffset, s.RingShorts);
            ExecutionPlan.InputRows(pool, m0, m1, out int lo, out int hi);
            Slide(ring, conv.OutW * conv.OutC, ref _ringBase[k], ref _ringEnd[k], lo);
            ConvRows(new ConvCall(s.A, s.InputOffset, inLength, inBase, _ringEnd[k], hi, s.RingOffset, s.RingShorts, _ringBase[k], 0, conv.OutC, 0, conv.OutC));
            if (hi > _ringEnd[k]) _ringEnd[k] = hi;
            // the pool by rows, each thread mostly over conv rows it wrote itself (ClaimItem): on thread 0 alone it read half its
            // rows from the other core's cache. Its input is the ring, so _xBase is the ring's first row.
            _step = s; _xBase = _ringBase[k]; _yLength = outLength; _yBase = outBase;
            ShareItems(m0, m1, Plan.Threads == 1 ? m1 - m0 : 1);
            Parallel(Job.MaxPool);
            _afterLayer?.Invoke(s.Pool);
        }

        // The band being run, for the threads that share a bottleneck's C convolution and Add, or the stem's max pool.
        PlanStep _step = null!;
        int _r0, _r1, _xLength, _xBase, _yLength, _yBase;

        void BottleneckBand(int k, int r0, int r1, int xLength, int xBase, int yLength, int yBase)
        {
            var s = Plan.Steps[k];
            QLayer a = _layers[s.A], b = _layers[s.B], c = _layers[s.C];
            var ring = Arena(s.RingOffset, s.RingShorts);
            ExecutionPlan.InputRows(b, r0, r1, out int lo, out int hi);
            Slide(ring, Plan.TensorShorts(a.OutW * a.OutC), ref _ringBase[k], ref _ringEnd[k], lo);
            int aBase = _ringBase[k];
            ConvRows(new ConvCall(s.A, s.InputOffset, xLength, xBase, Math.Max(_ringEnd[k], lo), hi, s.RingOffset, s.RingShorts, aBase, 0, a.OutC, 0, a.OutC));
            if (hi > _ringEnd[k]) _ringEnd[k] = hi;
            // the projection before the 3x3: in a block of one band nothing reads the input after it, so the 3x3's weight
            // group may lie there (ExecutionPlan.PlaceArenaGroups)
            if (s.P >= 0)
                ConvRows(s.ShortcutIntoOutput
                    ? new ConvCall(s.P, s.InputOffset, xLength, xBase, r0, r1, s.OutputOffset, yLength, yBase, 0, c.OutC, 0, c.OutC)
                    : new ConvCall(s.P, s.InputOffset, xLength, xBase, r0, r1, s.ShortcutOffset, s.ShortcutShorts, r0, 0, c.OutC, 0, c.OutC));
            ConvRows(new ConvCall(s.B, s.RingOffset, s.RingShorts, aBase, r0, r1, s.BandOffset, s.BandShorts, r0, 0, b.OutC, 0, b.OutC));
            _step = s; _r0 = r0; _r1 = r1; _xLength = xLength; _xBase = xBase; _yLength = yLength; _yBase = yBase;
            ShareChannels(0, c.OutC, Plan.GroupSize(s.C));
            Parallel(Job.ConvAdd);
            _afterLayer?.Invoke(s.C);
            _afterLayer?.Invoke(s.Add);
        }

        /// <summary>
        /// Thread <paramref name="lane"/>'s share of a bottleneck band's C convolution and Add: the channels it claims
        /// (<see cref="ClaimItem"/>), group by group, each group's weights read once and its rows computed a few at a time
        /// (<see cref="ExecutionPlan.ExpansionRows"/>) into the thread's own group scratch, each few added to the shortcut into the block output.
        /// </summary>
        void ConvAddGroups(Lane lane)
        {
            var s = _step;
            var c = _layers[s.C];
            int groupAt = s.GroupOffset(lane.Index), gSize = Plan.GroupSize(s.C), r0 = _r0, r1 = _r1, chunk = ExecutionPlan.ExpansionRows(c, r1 - r0);
            while (ClaimItem(lane.Index, out int first, out int end))
                for (int co = first; co < end; co += gSize)
                {
                    int n = Math.Min(gSize, end - co);
                    var weights = LoadGroup(lane, s.C, co, n);
                    for (int q0 = r0; q0 < r1; q0 += chunk)
                    {
                        int q1 = Math.Min(r1, q0 + chunk);
                        RunRows(lane, new ConvCall(s.C, s.BandOffset, s.BandShorts, r0, q0, q1, groupAt, s.GroupShortsPerThread, q0, co, n, co, co + n), weights, co, n, q0, q1);
                        AddRows(lane, s, co, n, q0, q1);
                    }
                }
        }

        /// <summary>
        /// Rows [q0, q1) of channels [co, co + n) of a bottleneck band's Add, in one run of adds: the expansion conv's rows in the
        /// lane's group scratch and the shortcut (the projection band, the projection already in the output, or the input: identity), into the output.
        /// </summary>
        void AddRows(Lane lane, PlanStep s, int co, int n, int q0, int q1)
        {
            QLayer a = _layers[s.A], c = _layers[s.C], add = _layers[s.Add];
            var group = Arena(s.GroupOffset(lane.Index), s.GroupShortsPerThread);
            bool cFirst = add.Input0 == s.C + 1, projected = s.P >= 0 && !s.ShortcutIntoOutput;
            int w = c.OutW, channels = c.OutC, pixels = (q1 - q0) * w;
            int yAt = (q0 - _yBase) * w * channels + co, xAt = (q0 - _xBase) * w * channels + co, bandAt = (q0 - _r0) * w * channels + co;
#if !NANOFRAMEWORK
            if (Plan.ByteTensors)
            {
                var y8 = TensorBytes(s.OutputOffset, _yLength).Slice(yAt);
                var shortcut = projected ? TensorBytes(s.ShortcutOffset, s.ShortcutShorts).Slice(bandAt) : s.ShortcutIntoOutput ? y8 : TensorBytes(s.InputOffset, _xLength).Slice(xAt);
                AddIntoBytes(lane, add, group, n, cFirst, shortcut, ByteTensors.IsUnsigned(_layers[s.P >= 0 ? s.P : a.Input0 - 1]), y8, channels, pixels);
                return;
            }
#endif
            var y = Arena(s.OutputOffset, _yLength);
            var sv = projected ? Arena(s.ShortcutOffset, s.ShortcutShorts).Slice(bandAt) : s.ShortcutIntoOutput ? y.Slice(yAt) : Arena(s.InputOffset, _xLength).Slice(xAt);
            AddPixels(add, cFirst ? group : sv, cFirst ? n : channels, cFirst ? sv : group, cFirst ? channels : n, y.Slice(yAt), channels, pixels, n);
        }

#if !NANOFRAMEWORK
        /// <summary>
        /// The Add of an expansion group (<paramref name="n"/> channels a pixel in <paramref name="group"/>) and its shortcut in bytes
        /// (the projection band, or the block input), into the block output <paramref name="y"/> in bytes (<paramref name="channels"/>
        /// a pixel in both): the shortcut widened into the lane's im2col area, the sum over it, then to bytes, as many pixels at a time as it holds.
        /// </summary>
        void AddIntoBytes(Lane lane, QLayer add, Span<short> group, int n, bool cFirst, Span<byte> shortcut, bool shortcutUnsigned, Span<byte> y, int channels, int pixels)
        {
            var area = Arena(lane.Im2ColOffset, Plan.Im2ColShorts);
            int chunk = Plan.Im2ColShorts / n;
            for (int p0 = 0; p0 < pixels; p0 += chunk)
            {
                int m = Math.Min(chunk, pixels - p0);
                var sum = area.Slice(0, m * n);
                ByteTensors.Widen(shortcut.Slice(p0 * channels), channels, shortcutUnsigned, sum, n, m, n);
                var g = group.Slice(p0 * n);
                AddPixels(add, cFirst ? g : sum, n, cFirst ? sum : g, n, sum, n, m, n);
                ByteTensors.Narrow(sum, n, y.Slice(p0 * channels), channels, m, n);
            }
        }
#endif

        void RunHead(PlanStep s)
        {
            var gap = _layers[s.Gap]; var fc = _layers[s.Fc];
            var pooled = Arena(s.RingOffset, gap.OutC);
#if !NANOFRAMEWORK
            if (Plan.ByteTensors) ByteTensors.GlobalAvgPool(gap, TensorBytes(s.InputOffset, Plan.TensorShorts(gap.InSize)), ByteTensors.IsUnsigned(_layers[gap.Input0 - 1]), pooled);
            else
#endif
#if NET
            if (Plan.SimdKernels) FastPool.GlobalAvgPool(gap, Arena(s.InputOffset, gap.InSize), pooled);
            else
#endif
            ReferenceKernels.GlobalAvgPool(gap, Arena(s.InputOffset, gap.InSize), pooled);
            _afterLayer?.Invoke(s.Gap);
            ConvRows(new ConvCall(s.Fc, s.RingOffset, gap.OutC, 0, 0, 1, -1, 0, 0, 0, fc.OutC, 0, fc.OutC));
        }

        /// <summary>Keeps rows [lo, end) of a window of rows (a ring, or a window of the segment) at its front (memmove), so new rows follow them; <see cref="StreamState.MoveBase"/> keeps its books.</summary>
        static void Slide(Span<short> rows, int rowSize, ref int baseRow, ref int endRow, int lo)
        {
            int oldBase = baseRow, keep = endRow - lo;
            if (StreamState.MoveBase(ref baseRow, ref endRow, lo) && keep > 0) rows.Slice((lo - oldBase) * rowSize, keep * rowSize).CopyTo(rows);
        }

        /// <summary>
        /// One conv call: output rows [Oy0, Oy1) and channels [CoStart, CoEnd) of conv layer <see cref="Layer"/>, reading the
        /// arena from <see cref="In"/> (input row <see cref="InRowBase"/> first) and writing it from <see cref="Out"/> (output row
        /// <see cref="OutRowBase"/> and channel <see cref="OutFirstChannel"/> first, <see cref="OutChannelStride"/> values per pixel),
        /// or the logits where <see cref="Out"/> is -1. Arena offsets, not spans, so the threads can share it.
        /// </summary>
        readonly struct ConvCall
        {
            public readonly int Layer, In, InLength, InRowBase, Oy0, Oy1, Out, OutLength, OutRowBase, OutFirstChannel, OutChannelStride, CoStart, CoEnd;

            public ConvCall(int layer, int input, int inLength, int inRowBase, int oy0, int oy1, int output, int outLength, int outRowBase,
                int outFirstChannel, int outChannelStride, int coStart, int coEnd)
            {
                Layer = layer; In = input; InLength = inLength; InRowBase = inRowBase; Oy0 = oy0; Oy1 = oy1; Out = output; OutLength = outLength;
                OutRowBase = outRowBase; OutFirstChannel = outFirstChannel; OutChannelStride = outChannelStride; CoStart = coStart; CoEnd = coEnd;
            }
        }

        ConvCall _call;

        /// <summary>
        /// A conv call, its channels shared among the threads (<see cref="ShareChannels"/>); or, for a layer the kernel copies
        /// im2col rows for (the stem) whose channels are one weight group, its output rows: thread 0 reads the group once and
        /// every thread runs rows of it, so no two threads copy the same im2col rows.
        /// </summary>
        void ConvRows(ConvCall call)
        {
            if (call.Oy1 <= call.Oy0) return;
            _call = call;
            var l = _layers[call.Layer];
            int g = Plan.GroupSize(call.Layer), im2colRow = ConvDispatch.ScratchShortsPerRow(l, Plan.Kernels[call.Layer]);
            if (Plan.Threads > 1 && im2colRow > 0 && call.CoEnd - call.CoStart <= g && Plan.ArenaGroupOffset(call.Layer, 0) < 0)
            {
                LoadGroup(_lanes[0], call.Layer, call.CoStart, call.CoEnd - call.CoStart);
                ShareItems(call.Oy0, call.Oy1, RowsPerCall(l, call.Layer, call.CoEnd - call.CoStart, call.Oy1 - call.Oy0, _lanes[0]));
                Parallel(Job.ConvByRows);
            }
            else
            {
                ShareChannels(call.CoStart, call.CoEnd, g);
                Parallel(Job.Conv);
            }
            _afterLayer?.Invoke(call.Layer);
        }

        /// <summary>Whether the band being run is its step's first: only then are a resident step's weights read (<see cref="PlanStep.Resident"/>).</summary>
        bool _firstBand = true;

        // The job's channels (or rows), in items the threads claim one at a time: item i is [_itemStart + i * _itemSize, ...) within _itemEnd;
        // _claimed items are taken, _fromFront of them from the first item up, _fromBack from the last down.
        int _itemStart, _itemEnd, _itemSize, _itemCount, _claimed, _fromFront, _fromBack;

        /// <summary>
        /// Cuts channels [coStart, coEnd) into items the threads claim as they go, not a fixed share each: the cores of a
        /// shared host do not run at one speed, and a fixed split waits for the slowest. One thread takes whole groups; more
        /// take about four items each, in whole cache lines of channels (32).
        /// </summary>
        void ShareChannels(int coStart, int coEnd, int group)
        {
            int perItem = (coEnd - coStart + 4 * Plan.Threads - 1) / (4 * Plan.Threads);
            // Items of whole cache lines of output (32 int16 channels = 64 B), several groups where groups are narrower: two threads
            // writing channels of one pixel's cache line would pass that line to and fro (stage 5's 3x3 convs, groups of 8 channels,
            // took longer on two threads than on one). At most a group where groups are wider.
            ShareItems(coStart, coEnd, Plan.Threads == 1 ? group : Math.Max(8, Math.Min(Math.Max(group, 32), (perItem + 31) & ~31)));
        }

        /// <summary>Makes [start, end) the job's items, <paramref name="size"/> channels or rows each (the last may be shorter), none claimed yet.</summary>
        void ShareItems(int start, int end, int size)
        {
            _itemStart = start;
            _itemEnd = end;
            _itemSize = Math.Max(1, size);
            _itemCount = (end - start + _itemSize - 1) / _itemSize;
            _claimed = _fromFront = _fromBack = 0;
        }

        /// <summary>
        /// The channels (or rows) of an unclaimed item of the job, or false when none is left. Thread 0 takes items from the
        /// first up, the others from the last down, so with two threads each runs one run of rows (or channels) that meet
        /// where the faster has gone further: a row's next step (the max pool after the stem) finds it in the cache of the
        /// core that wrote it, all but at the meeting point.
        /// </summary>
        bool ClaimItem(int thread, out int lo, out int hi)
        {
            lo = hi = 0;
#if NANOFRAMEWORK
            if (_claimed++ >= _itemCount) return false; // one thread
            int item = _fromFront++;
#else
            // at most _itemCount claims get past this line, so the items taken from the front and from the back never meet
            if (System.Threading.Interlocked.Increment(ref _claimed) > _itemCount) return false;
            int item = thread == 0 ? _fromFront++ : _itemCount - System.Threading.Interlocked.Increment(ref _fromBack); // only thread 0 takes the front
#endif
            lo = _itemStart + item * _itemSize;
            hi = Math.Min(_itemEnd, lo + _itemSize);
            return true;
        }

        /// <summary>
        /// Channels [co0, co1) of a conv call on one thread, streaming the weights and BN tables one channel group at a
        /// time into the thread's own buffers.
        /// </summary>
        void ConvLane(Lane lane, ConvCall call, int co0, int co1)
        {
            int g = Plan.GroupSize(call.Layer);
            for (int co = co0; co < co1; co += g)
            {
                int n = Math.Min(g, co1 - co);
                RunRows(lane, call, LoadGroup(lane, call.Layer, co, n), co, n, call.Oy0, call.Oy1);
            }
        }

        /// <summary>
        /// Reads the BN tables and weights of channels [co, co + n) of a conv layer into the lane's group (or its group in the
        /// arena), in as many reads as the packed bytes hold (an arena group is wider than they are), whole blocks each.
        /// </summary>
        Span<short> LoadGroup(Lane lane, int layer, int co, int n)
        {
            var l = _layers[layer];
            int block = Plan.ChannelBlock(layer);
            Span<byte> packed = lane.Packed;
#if !NANOFRAMEWORK
            int packedAt = Plan.ArenaPackedOffset(layer, lane.Index); // a conv the trimmed buffer leaves out reads its rows beside its group
            if (packedAt >= 0) packed = TensorBytes(packedAt, ExecutionPlan.PieceShorts(l));
#endif
            _image.ReadBnTables(l, co, n, _multipliers, _offsets, packed);
            var weights = GroupWeights(lane, layer, co, n);
            if (Plan.ResidentOffset(layer) >= 0 && !_firstBand) return weights; // read in the step's first band
            int unit = Math.Min(block, WeightLayout.PieceChannels); // a piece of a group starts where the unpack may put it
            int chunk = Math.Max(unit, Math.Min(n, packed.Length / l.RowBytes) / unit * unit);
            for (int c = 0; c < n; c += chunk)
                _image.ReadWeightRows(l, co + c, Math.Min(chunk, n - c), packed, weights, block, lane.Row, firstChannel: c);
            return weights;
        }

        /// <summary>Where the weights of channels [co, co + n) of a conv layer lie: among the layer's resident weights, in the lane's arena group, or in its own buffer.</summary>
        Span<short> GroupWeights(Lane lane, int layer, int co, int n)
        {
            var l = _layers[layer];
            int block = Plan.ChannelBlock(layer), shorts = WeightLayout.Shorts(n, l.WeightStride, block);
            int resident = Plan.ResidentOffset(layer), arenaGroup = Plan.ArenaGroupOffset(layer, lane.Index);
            return resident >= 0 ? Arena(resident + WeightLayout.Shorts(co, l.WeightStride, block), shorts)
                : arenaGroup >= 0 ? Arena(arenaGroup, shorts) : new Span<short>(lane.Weights, 0, shorts);
        }

        /// <summary>Output rows per kernel call: as many as the im2col rows and, where the kernel sums into them, the accumulators hold.</summary>
        int RowsPerCall(QLayer l, int layer, int n, int rows, Lane lane)
        {
            var kernel = Plan.Kernels[layer];
            int im2colRow = ConvDispatch.ScratchShortsPerRow(l, kernel);
            int accRows = ConvDispatch.UsesAccumulators(l, kernel, n) ? lane.Acc.Length / (l.OutW * n) : int.MaxValue;
            return Math.Max(1, Math.Min(im2colRow == 0 ? rows : Plan.Im2ColShorts / im2colRow, accRows));
        }

        /// <summary>Output rows [oy0, oy1) of channels [co, co + n) of a conv call on one thread, with those channels' <paramref name="weights"/>.</summary>
        void RunRows(Lane lane, ConvCall call, Span<short> weights, int co, int n, int oy0, int oy1)
        {
#if !NANOFRAMEWORK
            if (Plan.ByteInputViews[call.Layer] != null) { RunRowsStaged(lane, call, weights, co, n, oy0, oy1); return; }
#endif
            var l = _layers[call.Layer];
            var input = Arena(call.In, call.InLength);
            var output = call.Out < 0 ? default : Arena(call.Out, call.OutLength);
            var wide = call.Out < 0 ? new Span<int>(_logits) : default;
            var kernel = Plan.Kernels[call.Layer];
            var im2col = Arena(lane.Im2ColOffset, Plan.Im2ColShorts);
            int rowsPerCall = RowsPerCall(l, call.Layer, n, call.Oy1 - call.Oy0, lane);
            for (int oy = oy0; oy < oy1; oy += rowsPerCall)
            {
                var tile = new ConvTile
                {
                    CoStart = co, CoCount = n, OyStart = oy, OyCount = Math.Min(rowsPerCall, oy1 - oy),
                    InRowBase = call.InRowBase, OutRowBase = call.OutRowBase, OutChannelBase = co - call.OutFirstChannel, OutChannelStride = call.OutChannelStride,
                };
                ConvDispatch.Run(kernel, Plan.ChannelBlock(call.Layer), l, tile, input, weights, _multipliers, _offsets, output, wide, lane.Hi, lane.Lo, im2col, lane.Acc);
            }
        }

#if !NANOFRAMEWORK
        /// <summary>
        /// <see cref="RunRows"/> for a conv that reads bytes (<see cref="ExecutionPlan.ByteInputViews"/>): per kernel call, the input
        /// rows it reads are widened into int16 at the start of the lane's im2col area (a strided 1x1 conv's only every stride-th row
        /// and column: the kernel runs its stride-1 view), the kernel's own im2col rows follow, then, where it writes bytes
        /// (<see cref="ExecutionPlan.WritesBytes"/>), its int16 outputs, narrowed into the output after the call.
        /// </summary>
        void RunRowsStaged(Lane lane, ConvCall call, Span<short> weights, int co, int n, int oy0, int oy1)
        {
            var l = _layers[call.Layer];
            var view = Plan.ByteInputViews[call.Layer]!;
            var kernel = Plan.Kernels[call.Layer];
            bool subsampled = view.StrideH != l.StrideH, bytesOut = Plan.WritesBytes[call.Layer];
            var area = Arena(lane.Im2ColOffset, Plan.Im2ColShorts);
            var input = TensorBytes(call.In, call.InLength);
            bool unsigned = ByteTensors.IsUnsigned(_layers[l.Input0 - 1]);
            int rowValues = view.InW * view.InC, accRows = ConvDispatch.UsesAccumulators(view, kernel, n) ? lane.Acc.Length / (view.OutW * n) : int.MaxValue;
            int rowsPerCall = 1; // as many rows as the staging holds (sized for one)
            while (rowsPerCall < accRows && rowsPerCall < oy1 - oy0 && Plan.StagingShorts(call.Layer, rowsPerCall + 1, n) <= Plan.Im2ColShorts) rowsPerCall++;
            for (int oy = oy0; oy < oy1; oy += rowsPerCall)
            {
                int rows = Math.Min(rowsPerCall, oy1 - oy), first = oy;
                Span<short> staged;
                if (subsampled)
                {
                    staged = area.Slice(0, rows * rowValues);
                    for (int r = 0; r < rows; r++)
                        ByteTensors.Widen(input.Slice(((oy + r) * l.StrideH - call.InRowBase) * l.InW * l.InC), l.StrideW * l.InC, unsigned, staged.Slice(r * rowValues), view.InC, view.InW, view.InC);
                }
                else
                {
                    ExecutionPlan.InputRows(view, oy, oy + rows, out first, out int end);
                    staged = area.Slice(0, (end - first) * rowValues);
                    ByteTensors.Widen(input.Slice((first - call.InRowBase) * rowValues), 0, unsigned, staged, 0, 1, staged.Length);
                }
                var rest = area.Slice(staged.Length);
                int outValues = bytesOut ? rows * view.OutW * n : 0;
                var im2col = rest.Slice(0, rest.Length - outValues);
                var tile = new ConvTile { CoStart = co, CoCount = n, OyStart = oy, OyCount = rows, InRowBase = first };
                if (bytesOut) { tile.OutRowBase = oy; tile.OutChannelStride = n; }
                else { tile.OutRowBase = call.OutRowBase; tile.OutChannelBase = co - call.OutFirstChannel; tile.OutChannelStride = call.OutChannelStride; }
                var output = bytesOut ? rest.Slice(im2col.Length, outValues) : Arena(call.Out, call.OutLength);
                ConvDispatch.Run(kernel, Plan.ChannelBlock(call.Layer), view, tile, staged, weights, _multipliers, _offsets, output, default, lane.Hi, lane.Lo, im2col, lane.Acc);
                if (bytesOut)
                    ByteTensors.Narrow(output, n, TensorBytes(call.Out, call.OutLength).Slice((oy - call.OutRowBase) * view.OutW * call.OutChannelStride + co - call.OutFirstChannel),
                        call.OutChannelStride, rows * view.OutW, n);
            }
        }
#endif

        enum Job { Conv, ConvByRows, ConvAdd, MaxPool }
        Job _job;

        /// <summary>Runs the current job on every thread: this one as thread 0, the crew's as 1 .. T-1; returns when all are done.</summary>
        void Parallel(Job job)
        {
            _job = job;
#if !NANOFRAMEWORK
            if (_crew != null) { _crew.Run(); return; }
#endif
            Work(0);
        }

        void Work(int t)
        {
            if (_job == Job.ConvAdd) { ConvAddGroups(_lanes[t]); return; }
            if (_job == Job.MaxPool)
            {
                var s = _step;
                var ring = Arena(s.RingOffset, s.RingShorts);
                var output = Arena(s.OutputOffset, _yLength);
                var pool = _layers[s.Pool];
#if !NANOFRAMEWORK
                if (Plan.ByteTensors)
                {
                    // row by row through the lane's im2col area (the stem's conv is done with it), then to bytes
                    int rowValues = pool.OutW * pool.OutC;
                    var row = Arena(_lanes[t].Im2ColOffset, rowValues);
                    var bytes = TensorBytes(s.OutputOffset, _yLength);
                    while (ClaimItem(t, out int m0, out int m1))
                        for (int oy = m0; oy < m1; oy++)
                        {
                            MaxPool(pool, ring, _xBase, row, oy, 1, oy);
                            ByteTensors.Narrow(row, 0, bytes.Slice((oy - _yBase) * rowValues), 0, 1, rowValues);
                        }
                    return;
                }
#endif
                while (ClaimItem(t, out int m0, out int m1)) MaxPool(pool, ring, _xBase, output, m0, m1 - m0, _yBase);
                return;
            }
            if (_job == Job.ConvByRows)
            {
                var weights = GroupWeights(_lanes[0], _call.Layer, _call.CoStart, _call.CoEnd - _call.CoStart);
                while (ClaimItem(t, out int r0, out int r1)) RunRows(_lanes[t], _call, weights, _call.CoStart, _call.CoEnd - _call.CoStart, r0, r1);
                return;
            }
            while (ClaimItem(t, out int lo, out int hi)) ConvLane(_lanes[t], _call, lo, hi);
        }

        void MaxPool(QLayer pool, Span<short> input, int inRowBase, Span<short> output, int oyStart, int oyCount, int outRowBase)
        {
#if NET
            if (Plan.SimdKernels) { FastPool.MaxPool(pool, input, inRowBase, output, oyStart, oyCount, outRowBase); return; }
#endif
            ReferenceKernels.MaxPool(pool, input, inRowBase, output, oyStart, oyCount, outRowBase);
        }

        /// <summary>The Add over <paramref name="pixels"/> runs of <paramref name="n"/> channels, a run every stride values of each buffer.</summary>
        void AddPixels(QLayer add, Span<short> a, int aStride, Span<short> b, int bStride, Span<short> y, int yStride, int pixels, int n)
        {
#if NET
            if (Plan.SimdKernels) { FastAdd.AddPixels(add, a, aStride, b, bStride, y, yStride, pixels, n); return; }
#endif
            for (int p = 0; p < pixels; p++)
                for (int i = 0; i < n; i++) y[p * yStride + i] = ReferenceKernels.AddOne(add, a[p * aStride + i], b[p * bStride + i]);
        }
    }
}
