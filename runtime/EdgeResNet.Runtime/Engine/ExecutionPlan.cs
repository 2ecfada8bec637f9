using System;
using EdgeResNet.Runtime.Kernels;

namespace EdgeResNet.Runtime.Engine
{
    public enum StepKind { Stem, Bottleneck, Head }

    /// <summary>No plan can run this image: its layer table is not a ResNet the planner knows, or it does not fit the RAM budget.</summary>
    public sealed class PlanException : Exception
    {
        /// <summary>The RAM of the smallest plan, when the failure is the budget (else 0: the image cannot be planned at all).</summary>
        public long SmallestRamBytes { get; }
        public bool IsOverBudget => SmallestRamBytes > 0;

        public PlanException(string message, long smallestRamBytes = 0) : base(message) { SmallestRamBytes = smallestRamBytes; }
    }

    /// <summary>
    /// One step of the schedule. Stem: Conv then MaxPool. Bottleneck: convs A (1x1), B (3x3),
    /// C (1x1), optional projection P (1x1) and the Add. Head: GlobalAvgPool then the dense layer.
    /// Output rows are produced in bands of <see cref="BandRows"/>; every conv of the step streams
    /// its weights once per band, in groups of output channels. A step of the streamed segment
    /// (<see cref="Streamed"/>) reads and writes windows of rows (<see cref="ExecutionPlan.Windows"/>)
    /// instead of whole tensors, its bands interleaved with the other steps' (<see cref="ExecutionPlan.Bands"/>).
    /// </summary>
    public sealed class PlanStep
    {
        public StepKind Kind;
        public int A = -1, B = -1, C = -1, P = -1, Add = -1, Pool = -1, Gap = -1, Fc = -1;
        public int BandRows;
        /// <summary>Where the step's input and output tensors (or windows) start in the arena (in int16 units).</summary>
        public int InputOffset, OutputOffset;
        /// <summary>In the streamed segment: the windows the step reads and writes (-1: whole tensors, block by block).</summary>
        public int InWindow = -1, OutWindow = -1;
        public bool Streamed => OutWindow >= 0;
        /// <summary>
        /// The last step of the segment's first phase, where it has two (<see cref="ExecutionPlan.SegmentSplit"/>): the window
        /// its output goes to, every stride-th row and column, whole (the second phase's input); else -1.
        /// </summary>
        public int SinkWindow = -1;
        /// <summary>The projection P writes straight into the output rows (input and output do not overlap), so no projection band.</summary>
        public bool ShortcutIntoOutput;
        /// <summary>Scratch the step needs (int16 units): the ring (A rows with halo; the stem's conv rows), B band, projection band, C group.</summary>
        public int RingShorts, BandShorts, ShortcutShorts, GroupShorts;
        /// <summary>Of <see cref="GroupShorts"/>, what one thread's C group takes.</summary>
        public int GroupShortsPerThread;
        /// <summary>Where the ring starts (it lives from band to band), and where the rest of the scratch starts (it lives within one band).</summary>
        public int RingOffset, ScratchOffset;
        public int BandScratchShorts => BandShorts + ShortcutShorts + GroupShorts;
        public int ScratchTotal => RingShorts + BandScratchShorts;
        /// <summary>Where the B band, the projection band and thread <c>t</c>'s C group start in the arena.</summary>
        public int BandOffset => ScratchOffset;
        public int ShortcutOffset => BandOffset + BandShorts;
        public int GroupOffset(int thread) => ShortcutOffset + ShortcutShorts + thread * GroupShortsPerThread;
        public int Bands;
        /// <summary>
        /// In the streamed segment: the step's conv weights stay whole in the arena (at <see cref="ExecutionPlan.ResidentOffset"/>)
        /// from its first band to its last, read from flash once a frame instead of once a band; the BN tables are read each band.
        /// </summary>
        public bool Resident;
    }

    /// <summary>
    /// Rows [base, base + Rows) of one tensor of the streamed segment, kept at the window's start (the engine slides them
    /// down as readers move on); or, <see cref="Whole"/>, all rows of the tensor the segment's first phase writes for its second.
    /// </summary>
    public sealed class StreamWindow
    {
        public int Offset, RowShorts, Rows;
        /// <summary>The whole tensor, each row where the sink wrote it (never slid): the second phase's last step writes its own sink over the rows already read.</summary>
        public bool Whole;
        public int Shorts => RowShorts * Rows;
    }

    /// <summary>
    /// The memory plan, computed before the first frame from the layer table and a RAM budget. Block by block:
    /// one tensor area sized for the largest tensor (block outputs overwrite their inputs in place, a safety
    /// check proves no row is overwritten while still needed), band buffers, one weight group buffer, one
    /// im2col row. Below what that needs, the first steps run as one streamed segment (<see cref="SegmentEnd"/>):
    /// their tensors are never whole, only windows of the rows still read, and the segment's last step writes the
    /// subsampled input of the next block's strided 1x1 convs. All sizes are known here; a frame allocates nothing.
    /// </summary>
    public sealed class ExecutionPlan
    {
        /// <summary>The schedule, in order (an array: the portable core has no collections library).</summary>
        public PlanStep[] Steps = new PlanStep[0];
        public int TensorAreaShorts, ScratchShorts, Im2ColShorts, WeightGroupShorts, MaxAccLongs, MaxRowBytesGroup, MaxChannels;
        /// <summary>One weight row to unpack into, where a kernel reads its weights in another layout than rows (<see cref="ConvDispatch.ChannelBlock"/>).</summary>
        public int UnpackRowShorts;

        /// <summary>Steps 0 .. SegmentEnd run as one streamed segment; -1: none, every step runs block by block on whole tensors.</summary>
        public int SegmentEnd = -1;
        /// <summary>
        /// Where the segment runs in two phases, the first step of the second (-1: one phase). The first phase's last step
        /// writes its subsampled output whole (<see cref="PlanStep.SinkWindow"/>, in the sink's place), every band of the first
        /// phase runs before the second's, and the second phase's windows, rings and scratch reuse the first's arena.
        /// </summary>
        public int SegmentSplit = -1;
        /// <summary>The segment's windows of rows, each sized by the schedule (<see cref="StreamState"/>).</summary>
        public StreamWindow[] Windows = new StreamWindow[0];
        /// <summary>The segment's bands in the order they run: the step, its first and one-past-last output row.</summary>
        public int[] BandStep = new int[0], BandStart = new int[0], BandEnd = new int[0];
        /// <summary>Where the segment's last step writes every <see cref="SinkStride"/>-th row and column of its output: the whole input of the next step, whose strided 1x1 convs read it at stride 1.</summary>
        public int SinkOffset, SinkShorts;
        /// <summary>Every how many rows and columns the segment's sink keeps (0 without a segment).</summary>
        public int SinkStride => SegmentEnd >= 0 ? SinkStrideInto(SegmentEnd + 1) : 0;
        /// <summary>A plan with a segment streams its input too: window 0 holds the input rows the stem still reads, asked for as it needs them.</summary>
        public bool StreamsInput => SegmentEnd >= 0;
        /// <summary>Arena values the segment's windows, rings and band scratch reach (0 without a segment).</summary>
        public int SegmentShorts;
        /// <summary>The arena before the im2col rows: the larger of the block-by-block part (tensor area, scratch) and the segment.</summary>
        public int WorkShorts => Math.Max(TensorAreaShorts + ScratchShorts, SegmentShorts);
        /// <summary>Tensor area and scratch (or the segment), then the im2col rows (one set per thread).</summary>
        public int ArenaShorts => WorkShorts + Im2ColShorts * Threads;
        public int Im2ColOffset(int thread) => WorkShorts + thread * Im2ColShorts;
        /// <summary>Threads one frame runs on: each has its own weight group, unpack row, packed bytes, accumulators, im2col rows and bottleneck group scratch.</summary>
        public readonly int Threads;
        /// <summary>Some layer runs <see cref="ConvKernel.SimdSplit"/>: the engine holds the two split weight planes.</summary>
        public bool SplitWeights { get; private set; }
        /// <summary>The SIMD kernels may run (else the reference kernels everywhere); the im2col buffer is sized for the kernels that run.</summary>
        public readonly bool SimdKernels;
        /// <summary>
        /// The activations take one byte a value, an image whose activations are 8-bit (<see cref="StoresBytes"/>): the tensors kept
        /// between layers (the stem's output, the block outputs: the segment's windows but the input's, its sink, the tensor area)
        /// and the bottlenecks' rings, 3x3 bands and projection bands. The network input, the stem's conv rows and the expansion
        /// groups (summed into the Add) stay int16. A conv that reads or writes bytes runs on int16 rows staged in the lane's
        /// im2col area (<see cref="ByteInputViews"/>, <see cref="WritesBytes"/>). Offsets and sizes stay int16 units.
        /// </summary>
        public readonly bool ByteTensors;
        /// <summary>Arena values (int16 units) of <paramref name="values"/> activations stored as <see cref="ByteTensors"/> says.</summary>
        public int TensorShorts(int values) => ByteTensors ? (values + 1) / 2 : values;
        /// <summary>
        /// Per conv layer that reads a byte tensor (a bottleneck's four convs): the layer the kernel runs on its staged int16 rows,
        /// for a strided 1x1 conv its stride-1 view over the rows and columns it reads (<see cref="QLayer.Subsampled"/>); else null.
        /// </summary>
        public QLayer?[] ByteInputViews { get; private set; } = new QLayer?[0];
        /// <summary>Per conv layer: it writes a byte tensor (a bottleneck's reduction A, its 3x3 B and its projection P).</summary>
        public bool[] WritesBytes { get; private set; } = new bool[0];

        /// <summary>
        /// Whether every activation but the logits fits one byte: each layer saturates to 8 bits, or to 9 and is not negative
        /// (a ReLU, or a pool of such a tensor), and a row is an even number of values (so a byte row is whole int16 units).
        /// The nanoFramework build keeps int16 tensors (it has no byte views of the arena).
        /// </summary>
        public static bool StoresBytes(QModel model)
        {
#if NANOFRAMEWORK
            return false;
#else
            var L = model.Layers;
            var nonNegative = new bool[L.Length];
            for (int i = 0; i < L.Length; i++)
            {
                var l = L[i];
                nonNegative[i] = l.Relu || (l.Op == QOp.MaxPool || l.Op == QOp.GlobalAvgPool) && l.Input0 >= 1 && nonNegative[l.Input0 - 1];
                if (l.WideOutput) continue;
                if (!(l.OutBits <= 8 || l.OutBits == 9 && nonNegative[i]) || (l.OutW * l.OutC) % 2 != 0) return false;
            }
            return L.Length > 0;
#endif
        }

        /// <summary>Per layer: the conv kernel that computes it (<see cref="ConvDispatch.Select"/>; Reference for other operators).</summary>
        public ConvKernel[] Kernels { get; private set; } = new ConvKernel[0];
        /// <summary>The layers the engine runs: the model's, except that the strided 1x1 convs reading the segment's sink are their <see cref="QLayer.Subsampled"/> views.</summary>
        public QLayer[] Layers { get; private set; } = new QLayer[0];
        public readonly QModel Model;
        /// <summary>The RAM budget the plan was made for (for <see cref="Smallest"/>, 0 or a byte less than a plan it found).</summary>
        public readonly long RamBudgetBytes;

        /// <summary>
        /// Bytes of everything the engine allocates for this plan, as a 64-bit .NET heap holds it (<see cref="ArrayBytes"/>):
        /// the arena, per thread the weight group (and its two split planes), the unpack row, packed bytes and accumulators,
        /// the BN tables and logits, the per-step and streamed-segment bookkeeping, and the engine's own objects.
        /// </summary>
        public long RamBytes => BuffersBytes(ArenaShorts + (Threads > 1 ? ArenaAlignShorts : 0));

        /// <summary>Slack that lets a plan of several threads start its arena on a 64-byte cache line.</summary>
        public const int ArenaAlignShorts = 32;

        /// <summary>
        /// What an array of <paramref name="payloadBytes"/> takes on a 64-bit .NET heap (CoreCLR, Mono): a header word, the
        /// type pointer and the length (24 B), the whole rounded up to 8 bytes. Counting each of the engine's arrays so is
        /// what makes its measured heap the plan's figure, not a kilobyte over it.
        /// </summary>
        public static long ArrayBytes(long payloadBytes) => (24 + payloadBytes + 7) & ~7L;

        /// <summary>
        /// The engine's objects that are not arrays, on a 64-bit .NET heap (16 B of header, then the fields): the engine
        /// (14 references and 29 ints), each thread's lane (6 references, 2 ints) and the streamed segment's state (5 references).
        /// A field added to one of them changes these; the engine-heap tests say so.
        /// </summary>
        public const int EngineObjectBytes = 248, LaneObjectBytes = 72, StreamStateObjectBytes = 56;

        /// <summary>
        /// Room for what the host allocates to start each thread past the first (its thread object, wake event and start
        /// delegate, and what starting it takes, a few hundred bytes; the host's one-time setup of its first thread aside): not the
        /// engine's to lay out, so a bound the engine-heap tests check.
        /// </summary>
        public const int CrewBytesPerThread = 4096;

        long BuffersBytes(long arenaShorts) => ArrayBytes(2L * arenaShorts) + WeightBufferBytes + EngineStateBytes;

        /// <summary>Every thread's own buffers (<see cref="ThreadBuffersBytes"/>) and the BN tables (a multiplier and an offset per channel).</summary>
        public long WeightBufferBytes => Threads * ThreadBuffersBytes + 2 * ArrayBytes(4L * MaxChannels);

        /// <summary>The rest: the logits, the lanes, the bookkeeping, the engine's objects and, past one thread, the crew's.</summary>
        public long EngineStateBytes =>
            ArrayBytes(4L * Model.Classes) + ArrayBytes(8L * Threads) + Threads * LaneObjectBytes + BookkeepingBytes + EngineObjectBytes
            + (Threads - 1) * (long)CrewBytesPerThread;

        /// <summary>Where each step's ring stands (two ints per step) and, with a segment, its <see cref="StreamState"/>.</summary>
        public long BookkeepingBytes =>
            2 * ArrayBytes(4L * Steps.Length)
            + (SegmentEnd >= 0 ? StreamStateObjectBytes + 2 * ArrayBytes(4L * (SegmentEnd + 1)) + 2 * ArrayBytes(4L * Windows.Length) : 0);

        /// <summary>Bytes of one thread's own buffers: its weight group (and split planes), unpack row, packed bytes and accumulators.</summary>
        public long ThreadBuffersBytes =>
            ArrayBytes(2L * WeightGroupShorts) + 2 * ArrayBytes(SplitWeights ? 2L * WeightGroupShorts : 0) + ArrayBytes(2L * UnpackRowShorts)
            + ArrayBytes(MaxRowBytesGroup) + ArrayBytes(8L * MaxAccLongs);

        /// <summary>
        /// At most what one more thread adds to this plan with the same bands and groups: its own buffers, its im2col rows
        /// and its expansion-group scratch in the widest step (the steps share their band scratch, so it grows by at most that).
        /// </summary>
        public long ExtraThreadBytes
        {
            get
            {
                int group = 0;
                foreach (var s in Steps) group = Math.Max(group, s.GroupShortsPerThread);
                return ThreadBuffersBytes + LaneObjectBytes + 8 + CrewBytesPerThread + 2L * (Im2ColShorts + group);
            }
        }

        /// <summary>Output channels per weight group of conv layer <paramref name="layer"/> (<see cref="GroupSizeOf"/>, fixed with the buffers).</summary>
        public int GroupSize(int layer) => _groupSizes[layer];
        int[] _groupSizes = new int[0];

        /// <summary>The <see cref="WeightLayout"/> block conv layer <paramref name="layer"/>'s weights are unpacked into and its kernel reads (<see cref="BlockOf"/>).</summary>
        public int ChannelBlock(int layer) => _blocks[layer];
        int[] _blocks = new int[0];

        /// <summary>
        /// The kernel's widest block where the weight buffer holds two of them of this layer (or all its channels), else its
        /// narrowest: on AVX-512, a layer whose rows are too wide for 32 channels in the buffer takes groups of 8, 16 or 24
        /// channels in blocks of 8 rather than one half-used vector of 16 that would need a buffer twice the size of 8.
        /// </summary>
        int BlockOf(QLayer l, ConvKernel kernel)
        {
            int wide = ConvDispatch.ChannelBlock(kernel);
            return WeightLayout.Shorts(Math.Min(l.OutC, 2 * wide), l.WeightStride, wide) <= WeightGroupShorts ? wide : ConvDispatch.NarrowChannelBlock(kernel);
        }

        /// <summary>
        /// As many channels as the weight buffer holds and, where the kernel needs accumulators, one output row of them allows.
        /// A kernel that reads channel blocks takes whole blocks, so its group padded to a block still fits the buffer.
        /// </summary>
        int GroupSizeOf(QLayer l, ConvKernel kernel, int block)
        {
            int group = Math.Max(1, Math.Min(l.OutC, WeightGroupShorts / l.WeightStride / block * block));
            return ConvDispatch.UsesAccumulators(l, kernel, group) ? Math.Max(1, Math.Min(group, MaxAccLongs / l.OutW)) : group;
        }

        /// <summary>
        /// The accumulators conv layer <paramref name="l"/> needs: as many as asked for where its kernel sums into them (one output
        /// row of its group at least, all its rows at most; more rows make fewer, larger tiles), none for the reference kernel, and where the kernel
        /// requantises from its registers only those of a last group of fewer than 8 channels (which does not).
        /// </summary>
        int AccumulatorLongs(QLayer l, ConvKernel kernel, int group)
        {
            if (kernel == ConvKernel.Reference) return 0;
            if (ConvDispatch.UsesAccumulators(l, kernel, group)) return Math.Max(l.OutW * group, Math.Min(MaxAccLongs, l.OutW * group * l.OutH));
            return l.OutW * Math.Min(7, l.OutC);
        }

        /// <summary>
        /// At most this many channels per group of a bottleneck's expansion conv (C): each group is computed into scratch
        /// (band rows x width x group) before its add, so wider groups cost RAM and save nothing but a few calls.
        /// </summary>
        public const int ExpansionGroupChannels = 64;

        /// <summary>
        /// Rows of a band of <paramref name="bandRows"/> the expansion conv computes into its group scratch before their Add: enough
        /// for 64 pixels (the SIMD kernel's tiles are 6 pixels: a 7-pixel row alone would leave 5 of 12 lanes idle), not the whole
        /// band, whose group scratch was the largest buffer of a tall band.
        /// </summary>
        public static int ExpansionRows(QLayer c, int bandRows) => Math.Max(1, Math.Min(bandRows, (ExpansionPixels + c.OutW - 1) / c.OutW));

        /// <summary>Pixels of rows the expansion conv computes at a time (<see cref="ExpansionRows"/>).</summary>
        public const int ExpansionPixels = 64;

        /// <summary>The RAM budget the board app and the tools plan for unless told otherwise: 2 MiB.</summary>
        public const long DefaultRamBudgetBytes = 2L << 20;

        /// <summary>
        /// The budget a plan of <paramref name="threads"/> threads gets unless told otherwise: the default 2 MiB plus, for each
        /// thread past the first, what a thread adds to the one-thread default plan (<see cref="ExtraThreadBytes"/>) and the
        /// arena's alignment slack, so the one-thread plan's bands and groups fit with every thread's own share.
        /// </summary>
        public static long DefaultBudget(QModel model, int threads) =>
            threads <= 1 ? DefaultRamBudgetBytes
                : DefaultRamBudgetBytes + 2L * ArenaAlignShorts + (threads - 1) * new ExecutionPlan(model).ExtraThreadBytes;

        /// <param name="weightGroupShorts">The weight group buffer (int16 values); grown to one channel block (wide or narrow: <see cref="Search"/>) of the widest layer if needed (wider layers take two-block groups from the arena where it has room: <see cref="PlaceArenaGroups"/>).</param>
        /// <param name="accLongs">The accumulator buffer (64-bit values).</param>
        /// <param name="ramBudgetBytes">Band heights (and a streamed segment, below what block by block needs) are chosen so the whole plan stays within this.</param>
        /// <param name="referenceKernels">Run the reference conv kernel even where the SIMD one is available.</param>
        /// <param name="threads">Threads one frame runs on (the per-thread buffers are counted T times).</param>
        /// <exception cref="PlanException">The layer table is not a ResNet this planner knows, or even the smallest plan needs more RAM than <paramref name="ramBudgetBytes"/>.</exception>
        public ExecutionPlan(QModel model, int weightGroupShorts = 32768, int accLongs = 8192, long ramBudgetBytes = DefaultRamBudgetBytes, bool referenceKernels = false, int threads = 1)
            : this(model, weightGroupShorts, accLongs, ramBudgetBytes, referenceKernels, threads, enforceBudget: true) { }

        /// <summary>
        /// The plan with the least RAM the planner finds (tests and the footprint's floor): the least of the plans with one-row
        /// bands wherever scratch does not fit for free, then of the plans within a byte less than the last found, while one is.
        /// One-row bands are not always the least: a trimmed buffer's groups need room beside their step (a step of one band leaves
        /// its input's place free), which taller bands elsewhere may not cost.
        /// </summary>
        public static ExecutionPlan Smallest(QModel model, bool referenceKernels = false, int threads = 1) =>
            Smallest(model, 32768, 8192, referenceKernels, threads);

        static ExecutionPlan Smallest(QModel model, int weightGroupShorts, int accLongs, bool referenceKernels, int threads)
        {
            var smallest = new ExecutionPlan(model, weightGroupShorts, accLongs, 0, referenceKernels, threads, enforceBudget: false);
            while (true)
            {
                var smaller = new ExecutionPlan(model, weightGroupShorts, accLongs, smallest.RamBytes - 1, referenceKernels, threads, enforceBudget: false);
                if (smaller.RamBytes >= smallest.RamBytes) return smallest;
                smallest = smaller;
            }
        }

        readonly int _weightGroupRequest;
        int _accRequest;

        /// <summary>The accumulator buffer (64-bit values) the planner falls back to where RAM is tight.</summary>
        public const int TightAccLongs = 2048;

        ExecutionPlan(QModel model, int weightGroupShorts, int accLongs, long ramBudgetBytes, bool referenceKernels, int threads, bool enforceBudget)
        {
            if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), "a plan needs at least one thread");
            Model = model;
            RamBudgetBytes = ramBudgetBytes;
            Threads = threads;
            SimdKernels = FastConv.IsSupported && !referenceKernels;
            ByteTensors = StoresBytes(model);
            _weightGroupRequest = weightGroupShorts;
            Recognise(model.Layers);
            // The weight buffer holds at least one block of every layer: a wide block (AVX-512's 16 channels) keeps every layer's
            // groups wide enough for the full-width kernel; a narrow one (8) leaves more RAM to the activations. The narrow
            // buffer is taken only where it reads at least 1 % of the image fewer bytes a frame (the 1 MiB plan; not 2 MiB,
            // where it saves 0.3 % and ran about 10 % slower), or where only it fits. So is a narrow buffer trimmed below the
            // widest convs' block, level by level while some plan can still place their one-block groups in the arena.
            var best = Search(accLongs, ramBudgetBytes, wideBuffer: true);
            if (SimdKernels)
            {
                if (ConvDispatch.ChannelBlock(ConvKernel.Simd) != ConvDispatch.NarrowChannelBlock(ConvKernel.Simd))
                {
                    var narrow = Search(accLongs, ramBudgetBytes, wideBuffer: false);
                    if (Better(narrow, best, ramBudgetBytes)) best = narrow;
                }
                // below the buffer of the layout last searched, narrow and untrimmed; not where no trim could be better (it fits,
                // within 1 % of every weight read once)
                foreach (int level in best.Ram <= ramBudgetBytes && best.Flash <= WeightBytesOnce() * 101 / 100 ? new int[0] : TrimLevels())
                {
                    var trimmed = Search(accLongs, ramBudgetBytes, wideBuffer: false, trimShorts: level);
                    if (!trimmed.Valid) break;
                    if (Better(trimmed, best, ramBudgetBytes, keepTiles: true)) best = trimmed;
                }
            }
            Apply(best);
            if (enforceBudget && RamBytes > ramBudgetBytes)
            {
                // RAM does not always fall with the budget (a trimmed buffer's groups need room that taller bands may take): the
                // smallest plan may fit where this search found nothing that does; then it is this plan
                var smallest = Smallest(model, weightGroupShorts, accLongs, referenceKernels, threads);
                if (smallest.RamBytes > ramBudgetBytes)
                    throw new PlanException($"this image needs {smallest.RamBytes:N0} B of RAM in its smallest plan, more than the RAM budget of {ramBudgetBytes:N0} B; raise the budget to at least that, or pack a smaller network for this board", smallest.RamBytes);
                Apply(smallest._choice);
            }
        }

        /// <summary>The search's choice, laid out.</summary>
        void Apply(PlanChoice choice)
        {
            _choice = choice;
            _wideBuffer = choice.Wide;
            _trimShorts = choice.Trim;
            _accRequest = choice.Acc;
            Layout(choice.End, choice.Split, choice.LayoutBudget);
        }

        PlanChoice _choice;

        /// <summary>Whether the weight buffer holds a wide block (<see cref="ConvDispatch.ChannelBlock"/>) of every layer, or a narrow one.</summary>
        bool _wideBuffer = true;

        /// <summary>
        /// Where the narrow buffer is trimmed (int16 values; 0: not): it holds one block of every conv whose block is no larger,
        /// and a conv whose block is larger runs one block at a time from the arena (<see cref="PlaceArenaGroups"/>).
        /// </summary>
        int _trimShorts;

        /// <summary>A trimmed layout left a conv whose block the buffer cannot hold without a place in the arena: it cannot run.</summary>
        bool _groupsUnplaced;
        /// <summary>The arena values those unplaced groups would take.</summary>
        long _unplacedShorts;

        /// <summary>
        /// Whether <paramref name="a"/> beats <paramref name="b"/>: within the budget where <paramref name="b"/> is not, or by at
        /// least 1 % of the image fewer flash bytes a frame (a smaller buffer means smaller groups and slower kernels: at 2 MiB
        /// the narrow buffer saved 0.3 % and ran about 10 % slower); over the budget both, by less RAM. With
        /// <paramref name="keepTiles"/> (a trim), fewer flash bytes count only where they pay for the multiply-accumulates the trim
        /// moves into groups narrower than the kernel's full tile (<see cref="NarrowGroupMacs"/>), at 2 % of a frame's plus half a
        /// frame's per image of bytes saved: the 16-bit image's 1 MiB plan trimmed to 9,216 values read 9 % of the image fewer
        /// bytes but ran 29 % of its MACs so, and 1.36 times as long; the 8-bit image's at 600,000 B reads 0.64 of the image fewer.
        /// </summary>
        bool Better(PlanChoice a, PlanChoice b, long ramBudgetBytes, bool keepTiles = false)
        {
            long imageBytes = WeightBytesOnce();
            bool aFits = a.Ram <= ramBudgetBytes, bFits = b.Ram <= ramBudgetBytes;
            // the exchange rate of a trim: each image's worth of bytes saved buys half a frame's MACs in narrow groups, plus 2 %
            long macs = ConvMacs(narrowOnly: false), saved = b.Flash - a.Flash;
            bool fewerBytes = saved > imageBytes / 100
                && (!keepTiles || a.NarrowMacs - b.NarrowMacs <= macs / 50 + macs / 2 * saved / imageBytes); // (integers: no overflow below 4.6e9 MACs x 4 GB)
            return aFits && (!bFits || fewerBytes) || !aFits && !bFits && a.Ram < b.Ram;
        }

        /// <summary>
        /// Multiply-accumulates a frame runs in weight groups narrower than the kernel's full tile of two wide blocks (or the
        /// layer's channels): the kernel then holds fewer channels in its registers per pass over the inputs, and runs slower.
        /// </summary>
        long NarrowGroupMacs() => ConvMacs(narrowOnly: true);

        /// <summary>The convs' multiply-accumulates a frame, or only those of <see cref="NarrowGroupMacs"/>.</summary>
        long ConvMacs(bool narrowOnly)
        {
            long macs = 0;
            for (int i = 0; i < Layers.Length; i++)
            {
                var l = Layers[i];
                if (l.Op == QOp.Conv && (!narrowOnly || _groupSizes[i] < TwoBlocks(l, Kernels[i]))) macs += (long)l.OutH * l.OutW * l.OutC * l.ReduceSize;
            }
            return macs;
        }

        /// <summary>
        /// Whether a buffer trimmed to <paramref name="trimShorts"/> still holds a block of every conv that cannot run from the
        /// arena: the stem's, the streamed segment's (to step <paramref name="end"/>) and every expansion conv (<see cref="PlaceArenaGroups"/>).
        /// </summary>
        bool TrimLeavesOnlyBlockConvs(int end, int trimShorts)
        {
            for (int k = 0; k < Steps.Length; k++)
                foreach (int i in k <= Math.Max(0, end) ? new[] { Steps[k].A, Steps[k].B, Steps[k].C, Steps[k].P } : new[] { Steps[k].C })
                    if (i >= 0 && Model.Layers[i].WeightStride * ConvDispatch.NarrowChannelBlock(Kernels[i]) > trimShorts) return false;
            return true;
        }

        /// <summary>Flash bytes of every conv's weights and BN tables, each read once: the fewest a frame can read.</summary>
        long WeightBytesOnce()
        {
            long bytes = 0;
            foreach (var s in Steps) bytes += StepWeightBytes(s);
            return bytes;
        }

        /// <summary>
        /// The buffer sizes a trim may take, largest first: each conv's narrow block (weight stride x channels), below the
        /// buffer of the current layout, one size per step down (each leaves one more kind of conv to the arena).
        /// </summary>
        int[] TrimLevels()
        {
            int n = 0;
            var levels = new int[Layers.Length];
            for (int below = WeightGroupShorts; ; n++) // the largest size below the last, until there is none (no sort in nanoFramework)
            {
                int next = 0;
                for (int i = 0; i < Layers.Length; i++)
                    if (Layers[i].Op == QOp.Conv)
                    {
                        int size = Layers[i].WeightStride * ConvDispatch.NarrowChannelBlock(Kernels[i]);
                        if (size < below && size > next) next = size;
                    }
                if (next == 0) break;
                levels[n] = below = next;
            }
            var result = new int[n];
            Array.Copy(levels, result, n);
            return result;
        }

        /// <summary>
        /// Every way to run it with that weight buffer: block by block (-1), or a streamed segment ending before each block that
        /// can read a subsampled input, in one phase or split in two before such a block; each with the accumulators asked for,
        /// or fewer (smaller tiles, the same flash bytes) where RAM is tight. Within the budget, the fewest flash bytes per
        /// frame; over it, the least RAM.
        /// </summary>
        PlanChoice Search(int accLongs, long ramBudgetBytes, bool wideBuffer, int trimShorts = 0)
        {
            _wideBuffer = wideBuffer;
            _trimShorts = trimShorts;
            int steps = Steps.Length, best = -2, bestSplit = -1, bestAcc = accLongs;
            long bestRam = 0, bestFlash = 0, bestLayoutBudget = ramBudgetBytes, bestNarrowMacs = 0;
            foreach (int acc in new[] { accLongs, Math.Min(accLongs, TightAccLongs) })
                for (int end = -1; end < steps; end++)
                {
                    if (end >= 0 && !CanEndSegment(end) || trimShorts > 0 && !TrimLeavesOnlyBlockConvs(end, trimShorts)) continue;
                    for (int split = -1; split <= end; split++)
                    {
                        if (split >= 0 && !CanEndSegment(split - 1)) continue; // (never at 0: the stem is first)
                        _accRequest = acc;
                        long layoutBudget = LayoutPlacingGroups(end, split, ramBudgetBytes);
                        if (_groupsUnplaced) continue;
                        long ram = RamBytes, flash = EstimatedFlashBytes();
                        bool fits = ram <= ramBudgetBytes, bestFits = best > -2 && bestRam <= ramBudgetBytes;
                        if (best == -2 || (fits && (!bestFits || flash < bestFlash)) || (!fits && !bestFits && ram < bestRam))
                        {
                            best = end; bestSplit = split; bestAcc = acc; bestRam = ram; bestFlash = flash; bestLayoutBudget = layoutBudget; bestNarrowMacs = NarrowGroupMacs();
                        }
                    }
                }
            return new PlanChoice { End = best, Split = bestSplit, Acc = bestAcc, Ram = bestRam, Flash = bestFlash, Wide = wideBuffer, Trim = trimShorts, Valid = best > -2, LayoutBudget = bestLayoutBudget, NarrowMacs = bestNarrowMacs };
        }

        /// <summary>
        /// <see cref="Layout"/> with the budget, or where a trimmed buffer's one-block groups then find no place in the arena (the
        /// bands took the room), with that much less for the bands, then with none (the least scratch); returns the budget the
        /// layout was made for. <see cref="_groupsUnplaced"/> says if even that failed.
        /// </summary>
        long LayoutPlacingGroups(int end, int split, long ramBudgetBytes)
        {
            Layout(end, split, ramBudgetBytes);
            if (!_groupsUnplaced) return ramBudgetBytes;
            long lower = Math.Max(0, ramBudgetBytes - 2L * _unplacedShorts);
            Layout(end, split, lower);
            if (_groupsUnplaced && lower > 0) Layout(end, split, lower = 0);
            return lower;
        }

        /// <summary>One search's best: the segment's end and split, the accumulators, its RAM and flash bytes, the buffer kind and trim; not valid where no layout could run.</summary>
        struct PlanChoice
        {
            public int End, Split, Acc, Trim;
            public long Ram, Flash, LayoutBudget, NarrowMacs;
            public bool Wide, Valid;
        }

        /// <summary>Flash bytes a frame reads by the plan's band counts: every conv's weights and BN tables once per band of its step.</summary>
        public long EstimatedFlashBytes()
        {
            long total = 0;
            foreach (var s in Steps) total += s.Resident ? StepWeightBytes(s, bn: false) + s.Bands * StepWeightBytes(s, weights: false) : s.Bands * StepWeightBytes(s);
            return total;
        }

        /// <summary>Flash bytes of the step's convs: their weights, their BN tables, or both.</summary>
        long StepWeightBytes(PlanStep s, bool weights = true, bool bn = true)
        {
            long bytes = 0;
            foreach (int i in new[] { s.A, s.B, s.C, s.P, s.Fc })
                if (i >= 0) bytes += (weights ? Model.Layers[i].WeightsSize : 0) + (bn ? Model.Layers[i].BnSize : 0);
            return bytes;
        }

        /// <summary>Arena values a step's conv weights take whole, each conv in its kernel's layout (<see cref="PlanStep.Resident"/>).</summary>
        int ResidentShorts(PlanStep s)
        {
            int shorts = 0;
            foreach (int i in new[] { s.A, s.B, s.C, s.P })
                if (i >= 0) shorts += WeightLayout.Shorts(Layers[i].OutC, Layers[i].WeightStride, _blocks[i]);
            return shorts;
        }

        /// <summary>Per conv layer, where its whole weights lie in the arena while its step runs (-1: streamed group by group); see <see cref="PlanStep.Resident"/>.</summary>
        int[] _resident = new int[0];

        /// <summary>Where conv layer <paramref name="layer"/>'s whole weights lie in the arena (its channel blocks in order), or -1: its groups are read each band.</summary>
        public int ResidentOffset(int layer) => _resident[layer];

        /// <summary>
        /// A segment may end at step <paramref name="end"/> when the next step is a projection block whose 1x1 convs (A and
        /// the projection) have a stride and no padding: they read only every stride-th row and column, which the segment
        /// writes whole as the next step's input.
        /// </summary>
        bool CanEndSegment(int end)
        {
            if (end + 1 >= Steps.Length || Steps[end + 1].Kind != StepKind.Bottleneck || Steps[end + 1].P < 0) return false;
            var next = Steps[end + 1];
            return Model.Layers[next.A].CanSubsample() && Model.Layers[next.P].CanSubsample()
                && Model.Layers[next.A].StrideH == Model.Layers[next.P].StrideH;
        }

        /// <summary>The plan with the segment ending at step <paramref name="segmentEnd"/> (-1: none), its second phase from step <paramref name="split"/> (-1: one phase), sized for the budget.</summary>
        void Layout(int segmentEnd, int split, long ramBudgetBytes)
        {
            var model = Model;
            Recognise(model.Layers);
            SegmentEnd = segmentEnd;
            SegmentSplit = split;
            Layers = (QLayer[])model.Layers.Clone();
            foreach (int end in new[] { split - 1, segmentEnd }) // the blocks that read a sink take their subsampled views
                if (end >= 0)
                {
                    var next = Steps[end + 1];
                    Layers[next.A] = model.Layers[next.A].Subsampled();
                    Layers[next.P] = model.Layers[next.P].Subsampled();
                }
            var layers = Layers;
            WeightGroupShorts = _trimShorts > 0 ? _trimShorts : _weightGroupRequest;
            MaxAccLongs = _accRequest;
            UnpackRowShorts = Im2ColShorts = ScratchShorts = SegmentShorts = MaxRowBytesGroup = MaxChannels = 0;
            SinkOffset = SinkShorts = 0;
            Windows = new StreamWindow[0];
            BandStep = BandStart = BandEnd = new int[0];
            SplitWeights = false;
            Kernels = new ConvKernel[layers.Length];
            for (int i = 0; i < layers.Length; i++)
            {
                var l = layers[i];
                if (l.Op != QOp.Conv) continue;
                Kernels[i] = ConvDispatch.Select(l, SimdKernels);
                SplitWeights |= Kernels[i] == ConvKernel.SimdSplit;
                int block = _wideBuffer ? ConvDispatch.ChannelBlock(Kernels[i]) : ConvDispatch.NarrowChannelBlock(Kernels[i]); // the buffer holds one block of every layer (but those a trim leaves out)
                if (_trimShorts == 0 || l.WeightStride * block <= _trimShorts) WeightGroupShorts = Math.Max(WeightGroupShorts, l.WeightStride * block);
                if (block > 1) UnpackRowShorts = Math.Max(UnpackRowShorts, l.WeightStride);
                MaxAccLongs = Math.Max(MaxAccLongs, l.OutW);
                Im2ColShorts = Math.Max(Im2ColShorts, ConvDispatch.ScratchShortsPerRow(l, Kernels[i]));
            }
            _groupSizes = new int[layers.Length];
            _blocks = new int[layers.Length];
            _resident = new int[layers.Length];
            for (int i = 0; i < layers.Length; i++) _resident[i] = -1;
            foreach (var step in Steps) step.Resident = false;
            int accumulators = 0;
            var expansion = new bool[layers.Length];
            foreach (var step in Steps) if (step.C >= 0) expansion[step.C] = true;
            for (int i = 0; i < layers.Length; i++)
            {
                var l = layers[i];
                if (l.Op != QOp.Conv) continue;
                _blocks[i] = BlockOf(l, Kernels[i]);
                _groupSizes[i] = OversizedFor(l, _blocks[i]) ? Math.Min(l.OutC, _blocks[i]) : GroupSizeOf(l, Kernels[i], _blocks[i]);
                if (expansion[i]) _groupSizes[i] = Math.Min(_groupSizes[i], ExpansionGroupChannels);
                // the packed bytes hold a group's rows (a wider group is read in pieces) and its BN tables, one table at a time
                // (4 bytes a channel), in a group as wide as its arena group may make it; a conv a trimmed buffer leaves out reads
                // its rows into the arena beside its group
                int rowBytes = OversizedFor(l, _blocks[i]) ? 0 : _groupSizes[i] * l.RowBytes;
                MaxRowBytesGroup = Math.Max(MaxRowBytesGroup, Math.Max(rowBytes, 4 * Math.Max(_groupSizes[i], TwoBlocks(l, Kernels[i]))));
                MaxChannels = Math.Max(MaxChannels, l.OutC);
                accumulators = Math.Max(accumulators, AccumulatorLongs(l, Kernels[i], _groupSizes[i]));
            }
            MaxAccLongs = accumulators;
            SizeByteStaging(layers);

            // Tensor area of the steps run block by block: the largest tensor. Without a segment, block tensors start at 0
            // and the stem writes its output at the end of the area, so a block that widens it (2a) can write its output from
            // 0 upwards. After a segment, the block outputs start at 0 and the sink (the first block's input) follows them.
            int first = segmentEnd + 1, area = 0;
            if (segmentEnd < 0) area = model.InputSize + TensorShorts(layers[Steps[0].Pool].OutSize); // the input and the stem's output side by side
            for (int k = first; k < Steps.Length; k++)
                foreach (int i in new[] { Steps[k].A, Steps[k].B, Steps[k].C, Steps[k].P, Steps[k].Add, Steps[k].Pool, Steps[k].Gap })
                    if (i >= 0 && !layers[i].WideOutput) area = Math.Max(area, TensorShorts(layers[i].OutSize));
            TensorAreaShorts = area;
            if (segmentEnd >= 0)
            {
                var a = layers[Steps[first].A];
                SinkOffset = area;
                SinkShorts = TensorShorts(a.InSize);
                TensorAreaShorts = area + SinkShorts;
            }
            for (int k = first; k < Steps.Length; k++)
            {
                var s = Steps[k];
                s.InputOffset = k == 0 ? 0 : k == first && segmentEnd >= 0 ? SinkOffset : Steps[k - 1].OutputOffset;
                s.OutputOffset = s.Kind == StepKind.Stem ? area - TensorShorts(layers[s.Pool].OutSize) : s.Kind == StepKind.Bottleneck && s.P < 0 ? s.InputOffset : 0;
                // A projection block whose output fits beside its input writes it there: its projection then goes straight
                // into the output, with no band of its own.
                if (s.Kind == StepKind.Bottleneck && s.P >= 0)
                {
                    int inputEnd = s.InputOffset + TensorShorts(layers[s.A].InSize), outSize = TensorShorts(layers[s.C].OutSize);
                    if (outSize > s.InputOffset && inputEnd + outSize <= TensorAreaShorts) s.OutputOffset = inputEnd;
                }
                if (s.Kind == StepKind.Stem && s.InputOffset + model.InputSize > s.OutputOffset)
                    throw new PlanException("the input frame and the stem output do not fit side by side in the tensor area");
                if (s.Kind == StepKind.Bottleneck && s.P >= 0)
                    s.ShortcutIntoOutput = s.InputOffset >= s.OutputOffset + TensorShorts(layers[s.C].OutSize) || s.OutputOffset >= s.InputOffset + TensorShorts(layers[s.A].InSize);
            }

            // Band heights: as tall as the RAM budget allows (fewer bands = fewer weight re-reads).
            long scratchBudget = Math.Max(0, ramBudgetBytes - BuffersBytes(TensorAreaShorts + Im2ColShorts * Threads)) / 2;
            for (int k = first; k < Steps.Length; k++)
            {
                var s = Steps[k];
                // Room the step's own tensors leave in the tensor area (late stages are small) is scratch for free.
                int tensorsEnd = TensorsEnd(s);
                long budget = Math.Max(scratchBudget, TensorAreaShorts - tensorsEnd);
                int outRows = OutRows(s);
                for (s.BandRows = outRows; s.BandRows > 1; s.BandRows--)
                {
                    Size(s);
                    if (s.ScratchTotal <= budget) break;
                }
                Size(s);
                s.Bands = (outRows + s.BandRows - 1) / s.BandRows;
                if (tensorsEnd + s.ScratchTotal <= TensorAreaShorts) s.RingOffset = tensorsEnd;
                else
                {
                    s.RingOffset = TensorAreaShorts;
                    ScratchShorts = Math.Max(ScratchShorts, s.ScratchTotal);
                }
                s.ScratchOffset = s.RingOffset + s.RingShorts;
                CheckInPlace(s);
            }
            if (segmentEnd >= 0) PlanSegment(ramBudgetBytes);
            PlaceArenaGroups(first);
        }

        /// <summary>
        /// With <see cref="ByteTensors"/>, the im2col area of each thread also holds, for one output row of a conv that reads or
        /// writes bytes, its staged input rows, the kernel's own im2col row and its group's int16 outputs (a group as wide as
        /// <see cref="PlaceArenaGroups"/> may make it); and a row of the stem's pool and a pixel of an expansion group, on their
        /// way to bytes.
        /// </summary>
        void SizeByteStaging(QLayer[] layers)
        {
            ByteInputViews = new QLayer?[layers.Length];
            WritesBytes = new bool[layers.Length];
            if (!ByteTensors) return;
            foreach (var step in Steps)
            {
                if (step.Pool >= 0) Im2ColShorts = Math.Max(Im2ColShorts, layers[step.Pool].OutW * layers[step.Pool].OutC);
                if (step.Kind != StepKind.Bottleneck) continue;
                Im2ColShorts = Math.Max(Im2ColShorts, Math.Min(layers[step.C].OutC, ExpansionGroupChannels));
                foreach (int i in new[] { step.A, step.B, step.C, step.P })
                {
                    if (i < 0) continue;
                    var l = layers[i];
                    var view = l.CanSubsample() ? l.Subsampled() : l;
                    ByteInputViews[i] = view;
                    WritesBytes[i] = i != step.C;
                    int group = Math.Max(_groupSizes[i], TwoBlocks(l, Kernels[i]));
                    Im2ColShorts = Math.Max(Im2ColShorts, StagingShorts(i, 1, group));
                }
            }
        }

        /// <summary>
        /// The staging <paramref name="rows"/> output rows of <paramref name="group"/> channels of conv layer <paramref name="layer"/> take
        /// (<see cref="SizeByteStaging"/>): its input rows widened, the kernel's im2col rows, and the outputs on their way to bytes.
        /// </summary>
        public int StagingShorts(int layer, int rows, int group)
        {
            var view = ByteInputViews[layer]!;
            return RowsNeeded(view, rows) * view.InW * view.InC + rows * ConvDispatch.ScratchShortsPerRow(view, Kernels[layer])
                + (WritesBytes[layer] ? rows * view.OutW * group : 0);
        }

        /// <summary>Per conv layer, where in the arena thread 0's weight group lies (-1: in the thread's own buffer); see <see cref="PlaceArenaGroups"/>.</summary>
        int[] _arenaGroups = new int[0];

        /// <summary>Where thread <paramref name="thread"/>'s weight group of layer <paramref name="layer"/> lies in the arena, or -1: in the thread's own buffer.</summary>
        public int ArenaGroupOffset(int layer, int thread) =>
            _arenaGroups[layer] < 0 ? -1 : _arenaGroups[layer] + thread * ArenaGroupShorts(layer);

        /// <summary>Values one thread's weight group of conv layer <paramref name="layer"/> takes in its kernel's layout.</summary>
        int ArenaGroupShorts(int layer) => WeightLayout.Shorts(_groupSizes[layer], Layers[layer].WeightStride, _blocks[layer]);

        /// <summary>
        /// Where thread <paramref name="thread"/> reads the packed rows of conv layer <paramref name="layer"/> in the arena (after
        /// every thread's group), for a conv a trimmed buffer leaves out (its one block is wider than the thread's packed bytes);
        /// else -1: in the thread's own packed bytes.
        /// </summary>
        public int ArenaPackedOffset(int layer, int thread) =>
            _packedInArena[layer] ? _arenaGroups[layer] + Threads * ArenaGroupShorts(layer) + thread * PieceShorts(Layers[layer]) : -1;

        /// <summary>Arena values the packed rows of one piece of a group (<see cref="WeightLayout.PieceChannels"/> rows) of <paramref name="l"/> take: the group is read piece by piece.</summary>
        public static int PieceShorts(QLayer l) => (Math.Min(l.OutC, WeightLayout.PieceChannels) * l.RowBytes + 1) / 2;

        static int TwoBlocks(QLayer l, ConvKernel kernel) => Math.Min(l.OutC, 2 * ConvDispatch.ChannelBlock(kernel));

        /// <summary>
        /// A conv of a block-by-block step whose rows are too wide for two channel blocks in the weight buffer (stage 5's 3x3
        /// convs in a plan with the narrow buffer, stage 4's at 1 MiB) gets its two-block group in the arena instead, at the
        /// lowest place the step leaves free: outside its input, output, ring and band scratch (a tensor an earlier step no
        /// longer needs, the sink once read, the room above). The 3x3 conv of a projection block of one band may also take
        /// its input's place: the 1x1 reduction and the projection have read all of it before it runs (the engine runs the
        /// projection first). Nothing else of the step lies there, so the group costs no RAM; the kernel then runs its full
        /// tile of two wide blocks. Only kernels with no split planes (sized by the buffer) qualify, and that requantise from
        /// their registers or sum at least one row of the group into the accumulators the plan already has (the head's fc, one
        /// pixel wide, is one such: at 1 MiB it ran 16 channels in blocks of 8 before). A conv whose one block a trimmed buffer
        /// (<see cref="_trimShorts"/>) cannot hold takes that block there the same way, one at a time; where it finds no place,
        /// or its step is streamed, the layout cannot run (<see cref="_groupsUnplaced"/>).
        /// </summary>
        void PlaceArenaGroups(int first)
        {
            _arenaGroups = new int[Layers.Length];
            _packedInArena = new bool[Layers.Length];
            for (int i = 0; i < _arenaGroups.Length; i++) _arenaGroups[i] = -1;
            _groupsUnplaced = false;
            _unplacedShorts = 0;
            for (int k = 0; k < Steps.Length; k++)
            {
                var s = Steps[k];
                bool blockByBlock = k >= first && !s.Streamed && s.Kind != StepKind.Stem;
                foreach (int i in new[] { s.A, s.B, s.C, s.P, s.Fc })
                {
                    if (i < 0) continue;
                    var l = Layers[i];
                    // a conv the trimmed buffer leaves out reads its rows beside its group too (the thread's packed bytes are smaller)
                    bool oversized = OversizedFor(l, _blocks[i]), simd = Kernels[i] == ConvKernel.Simd && ConvDispatch.ChannelBlock(Kernels[i]) > 1;
                    bool inputRead = i == s.B && s.P >= 0 && s.Bands == 1;
                    int wide = TwoBlocks(l, Kernels[i]), wideBlock = ConvDispatch.ChannelBlock(Kernels[i]);
                    if (blockByBlock && simd && i != s.C && _groupSizes[i] < wide
                        && !(ConvDispatch.UsesAccumulators(l, Kernels[i], wide) && l.OutW * wide > MaxAccLongs))
                    {
                        long two = Threads * (long)(WeightLayout.Shorts(wide, l.WeightStride, wideBlock) + (oversized ? PieceShorts(l) : 0));
                        int at = FreePlace(s, two, inputRead);
                        if (at >= 0)
                        {
                            _arenaGroups[i] = at;
                            _packedInArena[i] = oversized;
                            _groupSizes[i] = wide;
                            _blocks[i] = wideBlock;
                            continue;
                        }
                    }
                    if (!oversized) continue;
                    // else its one block, or the layout cannot run
                    long one = Threads * (long)(ArenaGroupShorts(i) + PieceShorts(l));
                    int place = blockByBlock && simd && i != s.C ? FreePlace(s, one, inputRead) : -1;
                    if (place >= 0) { _arenaGroups[i] = place; _packedInArena[i] = true; }
                    else
                    {
                        _groupsUnplaced = true;
                        _unplacedShorts += one;
                    }
                }
            }
        }

        /// <summary>Per conv layer: it reads its packed rows into the arena, after every thread's group (<see cref="ArenaPackedOffset"/>).</summary>
        bool[] _packedInArena = new bool[0];

        /// <summary>Whether the weight buffer is too small for one block of <paramref name="l"/> (the buffer is trimmed: <see cref="_trimShorts"/>).</summary>
        bool OversizedFor(QLayer l, int block) => l.WeightStride * block > WeightGroupShorts;

        /// <summary>
        /// The lowest arena offset (on a cache line) below <see cref="WorkShorts"/> where <paramref name="shorts"/> values overlap
        /// none of what block-by-block step <paramref name="s"/> uses: its ring and band scratch, its output, and its input
        /// unless <paramref name="inputRead"/>; -1 where there is no such place.
        /// </summary>
        int FreePlace(PlanStep s, long shorts, bool inputRead)
        {
            var used = new long[3, 2];
            int n = 0;
            void Use(long at, long length) { used[n, 0] = at; used[n, 1] = at + length; n++; }
            Use(s.RingOffset, s.ScratchTotal);
            if (s.Kind == StepKind.Head) Use(s.InputOffset, TensorShorts(Layers[s.Gap].InSize));
            else
            {
                Use(s.OutputOffset, TensorShorts(Layers[s.C].OutSize));
                if (!inputRead) Use(s.InputOffset, TensorShorts(Layers[s.A].InSize));
            }
            for (int c = -1; c < n; c++) // candidates: the start of the arena and the end of each used range
            {
                long at = c < 0 ? 0 : (used[c, 1] + ArenaAlignShorts - 1) / ArenaAlignShorts * ArenaAlignShorts;
                bool free = at + shorts <= WorkShorts;
                for (int u = 0; u < n && free; u++) free = at + shorts <= used[u, 0] || used[u, 1] <= at;
                if (free) return (int)at;
            }
            return -1;
        }

        /// <summary>
        /// Band heights of the segment's steps and which keep their weights whole (<see cref="PlanStep.Resident"/>): one row
        /// each and none resident (the least RAM), then, while the budget allows, the change that saves the most flash bytes
        /// per byte of RAM it costs: a step's taller bands (one to three bands fewer) or, where weights may stay, a step's
        /// weights kept whole. Greedy choices can block better ones (at 1 MiB, stage 2's first weights kept whole leave no
        /// room for taller bands that save more), so it runs both ways: bands first then the weights that still fit, and both
        /// from the start; it keeps the fewer bytes.
        /// </summary>
        void PlanSegment(long ramBudgetBytes)
        {
            int n = SegmentEnd + 1;
            var rows = new int[n];
            var resident = new bool[n];
            for (int k = 0; k < n; k++) rows[k] = 1;
            LayoutSegment(rows, resident);
            if (RamBytes > ramBudgetBytes) return; // the smallest segment; the caller compares it
            // bands first, then the weights that still fit kept whole
            GrowSegment(rows, resident, ramBudgetBytes, allowResident: false);
            GrowSegment(rows, resident, ramBudgetBytes, allowResident: true);
            long bandsFirstFlash = EstimatedFlashBytes();
            var bandsFirstRows = (int[])rows.Clone();
            var bandsFirstResident = (bool[])resident.Clone();
            // both from the start
            for (int k = 0; k < n; k++) { rows[k] = 1; resident[k] = false; }
            LayoutSegment(rows, resident, prove: false);
            GrowSegment(rows, resident, ramBudgetBytes, allowResident: true);
            if (EstimatedFlashBytes() >= bandsFirstFlash) { rows = bandsFirstRows; resident = bandsFirstResident; }
            LayoutSegment(rows, resident);
        }

        /// <summary>The greedy growth of <see cref="PlanSegment"/> from the layout of <paramref name="rows"/> and <paramref name="resident"/>, which it changes.</summary>
        void GrowSegment(int[] rows, bool[] resident, long ramBudgetBytes, bool allowResident)
        {
            int n = rows.Length;
            while (true)
            {
                long ram = RamBytes;
                int bestStep = -1, bestRows = 0;
                long bestSaved = 0, bestCost = 1; // the best flash bytes saved per byte of RAM, as a fraction (integers only)
                for (int k = 0; k < n; k++)
                {
                    int outRows = OutRows(Steps[k]), bands = (outRows + rows[k] - 1) / rows[k], old = rows[k];
                    long perBand = StepWeightBytes(Steps[k], weights: !resident[k]);
                    // one, two or three bands fewer: a window may need a few rows more before any saving shows
                    for (int fewer = 1; fewer <= 3 && bands - fewer >= 1; fewer++)
                    {
                        int taller = (outRows + bands - fewer - 1) / (bands - fewer); // the fewest rows that make that many bands
                        rows[k] = taller;
                        LayoutSegment(rows, resident, prove: false); // a trial: the plan kept is proven
                        rows[k] = old;
                        if (RamBytes > ramBudgetBytes) break;
                        long saved = (bands - (outRows + taller - 1) / taller) * perBand, cost = Math.Max(1, RamBytes - ram);
                        if (saved * bestCost > bestSaved * cost) { bestSaved = saved; bestCost = cost; bestStep = k; bestRows = taller; }
                    }
                    if (allowResident && !resident[k] && bands > 1)
                    {
                        resident[k] = true;
                        LayoutSegment(rows, resident, prove: false);
                        resident[k] = false;
                        long saved = (bands - 1) * StepWeightBytes(Steps[k], bn: false), cost = Math.Max(1, RamBytes - ram);
                        if (RamBytes <= ramBudgetBytes && saved * bestCost > bestSaved * cost) { bestSaved = saved; bestCost = cost; bestStep = k; bestRows = 0; }
                    }
                }
                if (bestStep < 0) break;
                if (bestRows == 0) resident[bestStep] = true;
                else rows[bestStep] = bestRows;
                LayoutSegment(rows, resident, prove: false);
            }
        }

        /// <summary>
        /// The segment with these band heights: its windows (a projection block starts one; identity blocks add into
        /// the window they read, in place; the second phase's first block reads the first phase's output whole), the order of
        /// its bands (each step asks the one before it for the rows its next band reads; the first phase runs to its end
        /// first), each window sized by running those bands through <see cref="StreamState"/>, then the arena places of the
        /// input, windows, rings, the band scratch the steps of a phase share and the weights of its resident steps, around
        /// the sink; the second phase reuses the first's places.
        /// </summary>
        void LayoutSegment(int[] rows, bool[] resident, bool prove = true)
        {
            var L = Layers;
            for (int i = 0; i < _resident.Length; i++) _resident[i] = -1;
            int n = SegmentEnd + 1, windows = 1;
            var win = new StreamWindow[n + 2];
            var windowPhase = new int[n + 2];
            win[0] = new StreamWindow { RowShorts = Model.InputW * Model.InputC }; // the input's rows
            var bandScratch = new int[2];
            int bandCount = 0;
            for (int k = 0; k < n; k++)
            {
                var s = Steps[k];
                int phase = PhaseOf(k);
                s.BandRows = rows[k];
                s.Resident = resident[k];
                s.ShortcutIntoOutput = s.P >= 0;
                s.SinkWindow = -1;
                Size(s);
                int outRows = OutRows(s);
                s.Bands = (outRows + s.BandRows - 1) / s.BandRows;
                bandCount += s.Bands;
                bandScratch[phase] = Math.Max(bandScratch[phase], s.BandScratchShorts);
                if (k == SegmentSplit)
                {
                    // the first phase's output, subsampled as this block's strided 1x1 convs read it, whole
                    var x = L[s.A];
                    win[windows] = new StreamWindow { RowShorts = TensorShorts(x.InW * x.InC), Rows = x.InH, Whole = true };
                    Steps[k - 1].SinkWindow = windows;
                    s.InWindow = windows++;
                }
                else s.InWindow = k == 0 ? 0 : Steps[k - 1].OutWindow;
                if (s.Kind == StepKind.Stem || s.P >= 0)
                {
                    var y = L[s.Kind == StepKind.Stem ? s.Pool : s.C];
                    win[windows] = new StreamWindow { RowShorts = TensorShorts(y.OutW * y.OutC) };
                    windowPhase[windows] = phase;
                    s.OutWindow = windows++;
                }
                else s.OutWindow = s.InWindow;
            }
            Windows = new StreamWindow[windows];
            Array.Copy(win, Windows, windows);
            BandStep = new int[bandCount]; BandStart = new int[bandCount]; BandEnd = new int[bandCount];

            var state = new StreamState(this);
            int emitted = 0;
            void Pull(int k, int rowsWanted)
            {
                var s = Steps[k];
                while (state.Produced[k] < rowsWanted)
                {
                    int r0 = state.Produced[k], r1 = Math.Min(OutRows(s), r0 + s.BandRows);
                    if (k > 0 && k != SegmentSplit) Pull(k - 1, InputEnd(s, r0, r1, state.Computed[k]));
                    for (int w = 0; w < Windows.Length; w++) state.Advance(w);
                    BandStep[emitted] = k; BandStart[emitted] = r0; BandEnd[emitted] = r1;
                    state.Fetch(emitted, out _, out _);
                    Windows[s.InWindow].Rows = Math.Max(Windows[s.InWindow].Rows, state.WindowEnd[s.InWindow] - state.WindowBase[s.InWindow]);
                    state.Done(emitted++);
                    var written = Windows[s.OutWindow];
                    written.Rows = Math.Max(written.Rows, state.WindowEnd[s.OutWindow] - state.WindowBase[s.OutWindow]);
                }
            }
            if (SegmentSplit > 0) Pull(SegmentSplit - 1, OutRows(Steps[SegmentSplit - 1]));
            Pull(SegmentEnd, OutRows(Steps[SegmentEnd]));
            // Rows no one reads are not computed (the last rows before a stride), so a step may run fewer bands.
            BandStep = First(BandStep, emitted); BandStart = First(BandStart, emitted); BandEnd = First(BandEnd, emitted);
            for (int k = 0; k < n; k++) Steps[k].Bands = 0;
            foreach (int k in BandStep) Steps[k].Bands++;

            // Arena places, skipping the sink and the whole window in its place (the second phase writes its sink over the
            // rows of the first phase's output it has read). Each phase places from the start: the second's bands all run
            // after the first's, when none of the first phase's windows, rings or scratch is read again.
            int regionEnd = SinkOffset + SinkShorts, end = 0, below = 0, above = 0;
            foreach (var w in Windows)
                if (w.Whole)
                {
                    w.Offset = SinkOffset;
                    regionEnd = Math.Max(regionEnd, SinkOffset + w.Shorts);
                }
            int Place(int shorts) // below the region where it still fits, else above it
            {
                int at;
                if (below + shorts <= SinkOffset) { at = below; below += shorts; }
                else { at = Math.Max(above, regionEnd); above = at + shorts; }
                end = Math.Max(end, at + shorts);
                return at;
            }
            for (int phase = 0; phase <= PhaseOf(SegmentEnd); phase++)
            {
                below = above = 0;
                for (int w = 0; w < Windows.Length; w++)
                    if (!Windows[w].Whole && windowPhase[w] == phase) Windows[w].Offset = Place(Windows[w].Shorts);
                for (int k = 0; k < n; k++)
                    if (PhaseOf(k) == phase) Steps[k].RingOffset = Place(Steps[k].RingShorts);
                int scratch = Place(bandScratch[phase]);
                for (int k = 0; k < n; k++)
                    if (PhaseOf(k) == phase && Steps[k].Resident)
                    {
                        var s = Steps[k];
                        int at = Place(ResidentShorts(s));
                        foreach (int i in new[] { s.A, s.B, s.C, s.P })
                            if (i >= 0) { _resident[i] = at; at += WeightLayout.Shorts(Layers[i].OutC, Layers[i].WeightStride, _blocks[i]); }
                    }
                for (int k = 0; k < n; k++)
                {
                    var s = Steps[k];
                    if (PhaseOf(k) != phase) continue;
                    s.ScratchOffset = scratch;
                    s.OutputOffset = Windows[s.OutWindow].Offset;
                    s.InputOffset = Windows[s.InWindow].Offset;
                }
            }
            SegmentShorts = Math.Max(end, regionEnd);
            if (prove) ProveSegment();
        }

        /// <summary>The phase of the segment step <paramref name="k"/> runs in: 0, or 1 from <see cref="SegmentSplit"/> on.</summary>
        int PhaseOf(int k) => SegmentSplit >= 0 && k >= SegmentSplit ? 1 : 0;

        /// <summary>The stride at which step <paramref name="k"/> (a block whose strided 1x1 convs read a sink) reads its input: every how many rows and columns a sink keeps.</summary>
        public int SinkStrideInto(int k) => Model.Layers[Steps[k].A].StrideH;

        /// <summary>Rows of a sink that output rows [0, <paramref name="outRows"/>) of the step before it fill (every <paramref name="stride"/>-th row).</summary>
        public static int SinkRowsOf(int outRows, int stride) => (outRows + stride - 1) / stride;

        /// <summary>
        /// Replays the segment's bands as the engine runs them and proves, band by band, that every row a band reads is
        /// still in its window (no row still needed was dropped or overwritten) and already written by the step before it
        /// (in a window identity blocks share, not an older version of the row), and that the rows it writes fit the window;
        /// that the second phase's bands all follow the first's, whose places it reuses; and that the sink never writes over
        /// rows of the whole window still to be read.
        /// </summary>
        /// <exception cref="PlanException">A window is too small or a band runs before the rows it reads exist (a planner bug).</exception>
        public void ProveSegment()
        {
            var state = new StreamState(this);
            int phaseSeen = 0;
            for (int band = 0; band < BandStep.Length; band++)
            {
                for (int v = 0; v < Windows.Length; v++) state.Advance(v);
                state.Fetch(band, out _, out _);
                int k = BandStep[band], r0 = BandStart[band], r1 = BandEnd[band];
                var s = Steps[k];
                string what = $"segment band {band} ({StepName(s)} rows [{r0},{r1}))";
                if (PhaseOf(k) < phaseSeen)
                    throw new PlanException($"{what} runs in the first phase after a band of the second, whose windows reuse its places (a planner bug)");
                phaseSeen = PhaseOf(k);
                int w = s.InWindow;
                InputRowsRead(s, r0, r1, state.Computed[k], out int first, out int end);
                if (first < state.WindowBase[w] || end > state.WindowEnd[w] || state.WindowEnd[w] - state.WindowBase[w] > Windows[w].Rows)
                    throw new PlanException($"{what} reads input rows [{first},{end}) but window {w} holds [{state.WindowBase[w]},{state.WindowEnd[w]}) in {Windows[w].Rows} rows (a planner bug)");
                // in a window several blocks write in turn: the rows read must be the step before's output, not an older one
                if (k > 0 && k != SegmentSplit && end > state.Produced[k - 1])
                    throw new PlanException($"{what} reads input rows up to {end} before {StepName(Steps[k - 1])} has written them (it has {state.Produced[k - 1]}; a planner bug)");
                int outBase = state.WindowBase[s.OutWindow];
                if (r0 < outBase || r1 - outBase > Windows[s.OutWindow].Rows)
                    throw new PlanException($"{what} writes rows past window {s.OutWindow} ({Windows[s.OutWindow].Rows} rows from {outBase}) (a planner bug)");
                if (s.SinkWindow >= 0 && SinkRowsOf(r1, SinkStrideInto(k + 1)) > Windows[s.SinkWindow].Rows)
                    throw new PlanException($"{what} writes rows past the whole window {s.SinkWindow} (a planner bug)");
                if (k == SegmentEnd)
                {
                    // the sink's rows written now against the rows of a whole window in its place still to be read
                    int rowShorts = SinkShorts / Layers[Steps[k + 1].A].InH, lo = SinkRowsOf(r0, SinkStride), hi = SinkRowsOf(r1, SinkStride);
                    long writeStart = SinkOffset + (long)lo * rowShorts, writeEnd = SinkOffset + (long)hi * rowShorts;
                    for (int v = 0; v < Windows.Length; v++)
                    {
                        var whole = Windows[v];
                        int live = Math.Max(state.Low(v), state.WindowBase[v]);
                        if (!whole.Whole || hi <= lo || live >= state.WindowEnd[v]) continue;
                        long liveStart = whole.Offset + (long)live * whole.RowShorts, liveEnd = whole.Offset + (long)state.WindowEnd[v] * whole.RowShorts;
                        if (writeStart < liveEnd && writeEnd > liveStart)
                            throw new PlanException($"{what}: the sink's rows [{lo},{hi}) would overwrite rows [{live},{state.WindowEnd[v]}) of the whole window {v} still to be read (a planner bug)");
                    }
                }
                state.Done(band);
            }
        }

        static int[] First(int[] values, int count)
        {
            var first = new int[count];
            Array.Copy(values, first, count);
            return first;
        }

        /// <summary>The lowest input row step <paramref name="s"/> still reads, having produced <paramref name="produced"/> output rows and its ring <paramref name="computed"/> rows (int.MaxValue: none).</summary>
        internal int NextInputRow(PlanStep s, int produced, int computed)
        {
            var L = Layers;
            int low = int.MaxValue;
            if (produced >= OutRows(s)) return low;
            var ringLayer = L[s.A];
            if (computed < ringLayer.OutH) InputRows(ringLayer, computed, computed + 1, out low, out _);
            if (s.Kind == StepKind.Bottleneck)
            {
                int shortcut = produced;
                if (s.P >= 0) InputRows(L[s.P], produced, produced + 1, out shortcut, out _);
                low = Math.Min(low, shortcut);
            }
            return low;
        }

        /// <summary>One past the last input row band [r0, r1) of step <paramref name="s"/> reads, its ring holding rows up to <paramref name="computed"/>.</summary>
        internal int InputEnd(PlanStep s, int r0, int r1, int computed)
        {
            InputRowsRead(s, r0, r1, computed, out _, out int end);
            return end;
        }

        /// <summary>
        /// The input rows [first, end) band [r0, r1) of step <paramref name="s"/> reads, its ring holding rows up to <paramref name="computed"/>:
        /// the ring's new rows (A's; the stem's conv rows) and the shortcut's (the projection's, or the identity's own rows).
        /// </summary>
        void InputRowsRead(PlanStep s, int r0, int r1, int computed, out int first, out int end)
        {
            var L = Layers;
            InputRows(s.Kind == StepKind.Stem ? L[s.Pool] : L[s.B], r0, r1, out int lo, out int hi);
            int from = Math.Max(computed, lo);
            first = int.MaxValue;
            end = 0;
            if (hi > from) InputRows(L[s.A], from, hi, out first, out end);
            if (s.Kind != StepKind.Bottleneck) return;
            int shortcutFirst = r0, shortcutEnd = r1;
            if (s.P >= 0) InputRows(L[s.P], r0, r1, out shortcutFirst, out shortcutEnd);
            first = Math.Min(first, shortcutFirst);
            end = Math.Max(end, shortcutEnd);
        }

        /// <summary>One past the last ring row (A rows; the stem's conv rows) band [r0, r1) of step <paramref name="s"/> needs.</summary>
        internal int RingEnd(PlanStep s, int r0, int r1)
        {
            InputRows(s.Kind == StepKind.Stem ? Layers[s.Pool] : Layers[s.B], r0, r1, out _, out int hi);
            return hi;
        }

        /// <summary>One past the last tensor-area value the step's input and output occupy; for a streamed step, the values of its windows.</summary>
        public int TensorsEnd(PlanStep s)
        {
            var L = Layers;
            if (s.Streamed)
                return Windows[s.InWindow].Shorts + (s.OutWindow != s.InWindow ? Windows[s.OutWindow].Shorts : 0);
            switch (s.Kind)
            {
                case StepKind.Stem: return TensorAreaShorts; // input at the start, output at the end
                case StepKind.Bottleneck: return Math.Max(s.InputOffset + TensorShorts(L[s.A].InSize), s.OutputOffset + TensorShorts(L[s.C].OutSize));
                default: return s.InputOffset + TensorShorts(L[s.Gap].InSize);
            }
        }

        internal int OutRows(PlanStep s) => s.Kind == StepKind.Stem ? Model.Layers[s.Pool].OutH : s.Kind == StepKind.Bottleneck ? Model.Layers[s.C].OutH : 1;

        void Size(PlanStep s)
        {
            var L = Layers;
            int r = s.BandRows;
            switch (s.Kind)
            {
                case StepKind.Stem:
                {
                    var conv = L[s.A]; var pool = L[s.Pool];
                    s.RingShorts = RowsNeeded(pool, r) * conv.OutW * conv.OutC;
                    s.BandShorts = s.ShortcutShorts = s.GroupShorts = 0;
                    break;
                }
                case StepKind.Bottleneck:
                {
                    var a = L[s.A]; var b = L[s.B]; var c = L[s.C];
                    s.RingShorts = TensorShorts(Math.Min(a.OutH, RowsNeeded(b, r)) * a.OutW * a.OutC);
                    s.BandShorts = TensorShorts(r * b.OutW * b.OutC);
                    s.ShortcutShorts = s.P >= 0 && !s.ShortcutIntoOutput ? TensorShorts(r * c.OutW * c.OutC) : 0;
                    s.GroupShortsPerThread = ExpansionRows(c, r) * c.OutW * GroupSize(s.C);
                    s.GroupShorts = s.GroupShortsPerThread * Threads;
                    break;
                }
                default:
                    s.RingShorts = L[s.Gap].OutC;
                    s.BandShorts = s.ShortcutShorts = s.GroupShorts = 0;
                    break;
            }
        }

        /// <summary>Input rows a layer reads to make <paramref name="outRows"/> consecutive output rows.</summary>
        static int RowsNeeded(QLayer l, int outRows) => (outRows - 1) * l.StrideH + l.KernelH;

        /// <summary>First and one-past-last input row (clipped) read by output rows [r0, r1).</summary>
        public static void InputRows(QLayer l, int r0, int r1, out int lo, out int hi)
        {
            lo = Math.Max(0, r0 * l.StrideH - l.PadTop);
            hi = Math.Min(l.InH, (r1 - 1) * l.StrideH - l.PadTop + l.KernelH);
        }

        /// <summary>
        /// Proves, band by band, that writing a bottleneck's output rows never overwrites input rows a
        /// later band (or the projection of this band, computed before any write) still reads.
        /// Identity shortcuts read and write the same element, which is safe by construction.
        /// </summary>
        void CheckInPlace(PlanStep s)
        {
            if (s.Kind != StepKind.Bottleneck) return;
            var L = Layers;
            var a = L[s.A]; var b = L[s.B]; var c = L[s.C];
            long rowX = TensorShorts(a.InW * a.InC), rowY = TensorShorts(c.OutW * c.OutC);
            for (int r0 = 0; r0 < c.OutH; r0 += s.BandRows)
            {
                int r1 = Math.Min(c.OutH, r0 + s.BandRows);
                // X rows read after this band's writes: by A rows not computed yet (A is 1x1: row i reads
                // X row i*stride) and by the projection of later bands.
                InputRows(b, r0, r1, out _, out int aDone);
                int xNeeded = r1 >= c.OutH ? a.InH : Math.Min(a.InH, aDone * a.StrideH);
                if (s.P >= 0 && r1 < c.OutH) xNeeded = Math.Min(xNeeded, r1 * L[s.P].StrideH);
                long writeEnd = s.OutputOffset + r1 * rowY, writeStart = s.OutputOffset + r0 * rowY;
                long liveStart = s.InputOffset + xNeeded * rowX, liveEnd = s.InputOffset + a.InH * rowX;
                bool identity = s.P < 0;
                if (identity && (s.InputOffset != s.OutputOffset || rowX != rowY))
                    throw new PlanException($"block '{c.Name}': an identity shortcut needs its output in place of its input");
                if (writeStart < liveEnd && writeEnd > liveStart)
                    throw new PlanException($"block '{c.Name}': output rows [{r0},{r1}) would overwrite input rows still needed; the memory plan cannot run this network in place");
            }
        }

        void Recognise(QLayer[] L)
        {
            var found = new PlanStep[L.Length]; // at most one step per layer
            int count = 0;
            void Add(PlanStep step) { found[count++] = step; }
            int i = 0;
            if (L.Length >= 2 && L[0].Op == QOp.Conv && L[0].Input0 == 0 && L[1].Op == QOp.MaxPool && L[1].Input0 == 1)
            {
                Add(new PlanStep { Kind = StepKind.Stem, A = 0, Pool = 1 });
                i = 2;
            }
            else throw new PlanException("the layer table does not start with a conv + max pool stem");
            while (i < L.Length)
            {
                int x = i; // tensor id of the block input is i (the output of layer i - 1)
                if (i + 1 < L.Length && L[i].Op == QOp.GlobalAvgPool && L[i + 1].Op == QOp.Conv && L[i + 1].WideOutput && i + 2 == L.Length)
                {
                    Add(new PlanStep { Kind = StepKind.Head, Gap = i, Fc = i + 1, BandRows = 1 });
                    Steps = new PlanStep[count];
                    Array.Copy(found, Steps, count);
                    return;
                }
                var s = new PlanStep { Kind = StepKind.Bottleneck, A = i, B = i + 1, C = i + 2 };
                bool ok = i + 3 < L.Length && L[i].Op == QOp.Conv && L[i].Input0 == x && L[i].KernelH == 1 && L[i].KernelW == 1
                    && L[i + 1].Op == QOp.Conv && L[i + 1].Input0 == i + 1 && L[i + 1].StrideH == 1
                    && L[i + 2].Op == QOp.Conv && L[i + 2].Input0 == i + 2 && L[i + 2].KernelH == 1 && L[i + 2].StrideH == 1;
                int next = i + 3;
                if (ok && L[next].Op == QOp.Conv)
                {
                    s.P = next;
                    ok = L[next].Input0 == x && L[next].KernelH == 1 && L[next].KernelW == 1;
                    next++;
                }
                ok = ok && next < L.Length && L[next].Op == QOp.Add;
                if (ok)
                {
                    int shortcut = s.P >= 0 ? s.P + 1 : x;
                    var add = L[next];
                    ok = (add.Input0 == i + 3 && add.Input1 == shortcut) || (add.Input1 == i + 3 && add.Input0 == shortcut);
                }
                if (!ok) throw new PlanException($"layers from {i} ('{L[i].Name}') are not a bottleneck block (1x1, 3x3, 1x1 convs, optional 1x1 projection, Add)");
                s.Add = next;
                Add(s);
                i = next + 1;
            }
            throw new PlanException("the layer table does not end with global average pooling + dense");
        }

        /// <summary>For each layer, the index of the step that runs it.</summary>
        public int[] StepOfLayer()
        {
            var map = new int[Model.Layers.Length];
            for (int i = 0; i < Steps.Length; i++)
                foreach (int layer in new[] { Steps[i].A, Steps[i].B, Steps[i].C, Steps[i].P, Steps[i].Add, Steps[i].Pool, Steps[i].Gap, Steps[i].Fc })
                    if (layer >= 0) map[layer] = i;
            return map;
        }

        /// <summary>The step's name for reports: "conv1+max_pooling2d", "res2a", "avg_pool+fc1000".</summary>
        public string StepName(PlanStep s)
        {
            var L = Layers;
            if (s.Kind == StepKind.Stem) return L[s.A].Name + "+" + L[s.Pool].Name;
            if (s.Kind == StepKind.Head) return L[s.Gap].Name + "+" + L[s.Fc].Name;
            string a = L[s.A].Name;
            int k = a.IndexOf("_branch2a");
            return k < 0 ? a : a.Substring(0, k) + a.Substring(k + "_branch2a".Length);
        }

        static string Every(int stride) => stride == 2 ? "second" : stride + "th";

        /// <summary>A readable schedule: one line per step.</summary>
        public string Describe()
        {
            string text = "";
            foreach (var s in Steps)
            {
                string name = StepName(s), kind = s.Streamed ? "Streamed" : s.Kind.ToString();
                text += $"{kind,-10} {name,-26} bands {s.Bands,2} x {s.BandRows,3} rows  in@{2L * s.InputOffset,9:N0} B  out@{2L * s.OutputOffset,9:N0} B  scratch {2L * s.ScratchTotal,9:N0} B@{2L * s.RingOffset,9:N0}\n";
            }
            for (int w = 0; w < Windows.Length; w++)
                text += $"window {w}: {Windows[w].Rows} rows x {2L * Windows[w].RowShorts:N0} B = {2L * Windows[w].Shorts:N0} B@{2L * Windows[w].Offset:N0}{(Windows[w].Whole ? " (whole: the first phase's output, every " + Every(SinkStrideInto(SegmentSplit)) + " row and column)" : "")}\n";
            if (SegmentEnd >= 0)
                text += $"segment: steps 1-{SegmentEnd + 1} streamed in {BandStep.Length} bands{(SegmentSplit >= 0 ? $", in two phases (steps 1-{SegmentSplit}, then {SegmentSplit + 1}-{SegmentEnd + 1} in the same places)" : "")}; its last step writes every {Every(SinkStride)} row and column, {2L * SinkShorts:N0} B@{2L * SinkOffset:N0}, the next step's input\n";
            foreach (var s in Steps)
                if (s.Resident) text += $"weights of {StepName(s)} whole in the arena while it runs: {2L * ResidentShorts(s):N0} B@{2L * _resident[s.A]:N0}\n";
            for (int i = 0; i < Layers.Length; i++)
                if (_arenaGroups[i] >= 0)
                    text += $"weight group of {Layers[i].Name} in the arena: {GroupSize(i)} channels, {2L * Threads * ArenaGroupShorts(i):N0} B{(ArenaPackedOffset(i, 0) >= 0 ? $" and a piece of its packed rows, {2L * Threads * PieceShorts(Layers[i]):N0} B," : "")}@{2L * _arenaGroups[i]:N0}\n";
            return text;
        }
    }
}
