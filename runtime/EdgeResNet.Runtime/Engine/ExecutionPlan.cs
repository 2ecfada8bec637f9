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
    /// its weights once per band, in groups of output channels.
    /// </summary>
    public sealed class PlanStep
    {
        public StepKind Kind;
        public int A = -1, B = -1, C = -1, P = -1, Add = -1, Pool = -1, Gap = -1, Fc = -1;
        public int BandRows;
        /// <summary>Where the step's input and output tensors start in the arena (in int16 units).</summary>
        public int InputOffset, OutputOffset;
        /// <summary>Scratch the step needs (int16 units): A rows with halo, B band, projection band, C group.</summary>
        public int RingShorts, BandShorts, ShortcutShorts, GroupShorts;
        /// <summary>Of <see cref="GroupShorts"/>, what one thread's C group takes.</summary>
        public int GroupShortsPerThread;
        /// <summary>Where the scratch starts in the arena: inside the tensor area where the step's tensors leave room, else after it.</summary>
        public int ScratchOffset;
        public int ScratchTotal => RingShorts + BandShorts + ShortcutShorts + GroupShorts;
        /// <summary>Where the B band, the projection band and thread <c>t</c>'s C group start in the arena (after the A ring at <see cref="ScratchOffset"/>).</summary>
        public int BandOffset => ScratchOffset + RingShorts;
        public int ShortcutOffset => BandOffset + BandShorts;
        public int GroupOffset(int thread) => ShortcutOffset + ShortcutShorts + thread * GroupShortsPerThread;
        public int Bands;
    }

    /// <summary>
    /// The memory plan, computed before the first frame from the layer table and a RAM budget:
    /// one tensor area sized for the largest tensor (block outputs overwrite their inputs in place,
    /// a safety check proves no row is overwritten while still needed), band buffers, one weight
    /// group buffer, one im2col row. All sizes are known here; a frame allocates nothing.
    /// </summary>
    public sealed class ExecutionPlan
    {
        /// <summary>The schedule, in order (an array: the portable core has no collections library).</summary>
        public PlanStep[] Steps = new PlanStep[0];
        public int TensorAreaShorts, ScratchShorts, Im2ColShorts, WeightGroupShorts, MaxAccLongs, MaxRowBytesGroup, MaxChannels;
        /// <summary>One weight row to unpack into, where a kernel reads its weights in another layout than rows (<see cref="ConvDispatch.ChannelBlock"/>).</summary>
        public int UnpackRowShorts;
        /// <summary>Tensor area, then the scratch of steps that do not fit inside it, then the im2col rows (one set per thread).</summary>
        public int ArenaShorts => TensorAreaShorts + ScratchShorts + Im2ColShorts * Threads;
        /// <summary>Threads one frame runs on: each has its own weight group, unpack row, packed bytes, accumulators, im2col rows and bottleneck group scratch.</summary>
        public readonly int Threads;
        /// <summary>Some layer runs <see cref="ConvKernel.SimdSplit"/>: the engine holds the two split weight planes.</summary>
        public readonly bool SplitWeights;
        /// <summary>The SIMD kernels may run (else the reference kernels everywhere); the im2col buffer is sized for the kernels that run.</summary>
        public readonly bool SimdKernels;
        /// <summary>Per layer: the conv kernel that computes it (<see cref="ConvDispatch.Select"/>; Reference for other operators).</summary>
        public readonly ConvKernel[] Kernels;
        public readonly QModel Model;

        /// <summary>Bytes of everything the engine allocates for this plan: the arena, per thread the weight group (and its two split planes), the unpack row, packed bytes and accumulators, then BN tables and logits.</summary>
        public long RamBytes => BuffersBytes(ArenaShorts + (Threads > 1 ? ArenaAlignShorts : 0));

        /// <summary>Slack that lets a plan of several threads start its arena on a 64-byte cache line.</summary>
        public const int ArenaAlignShorts = 32;

        long BuffersBytes(long arenaShorts) =>
            2L * arenaShorts + Threads * (2L * (WeightGroupShorts * (SplitWeights ? 3L : 1L) + UnpackRowShorts) + MaxRowBytesGroup + 8L * MaxAccLongs)
            + 8L * MaxChannels + 4L * Model.Classes;

        /// <summary>Output channels per weight group of conv layer <paramref name="layer"/> (<see cref="GroupSizeOf"/>, fixed with the buffers).</summary>
        public int GroupSize(int layer) => _groupSizes[layer];
        readonly int[] _groupSizes;

        /// <summary>
        /// As many channels as the weight buffer holds and one output row of accumulators allows. A kernel that reads
        /// channel blocks takes whole blocks, so its group padded to a block still fits the buffer.
        /// </summary>
        int GroupSizeOf(QLayer l, ConvKernel kernel)
        {
            int block = ConvDispatch.ChannelBlock(kernel);
            int fits = WeightGroupShorts / l.WeightStride / block * block;
            return Math.Max(1, Math.Min(l.OutC, Math.Min(fits, MaxAccLongs / l.OutW)));
        }

        /// <summary>The RAM budget the board app and the tools plan for unless told otherwise: 2 MiB.</summary>
        public const long DefaultRamBudgetBytes = 2L << 20;

        /// <summary>
        /// The budget a plan of <paramref name="threads"/> threads gets unless told otherwise: the default 2 MiB plus, for each
        /// thread past the first, that thread's own buffers (as the smallest plans measure them), so the shared part
        /// of the plan is the one-thread plan's.
        /// </summary>
        public static long DefaultBudget(QModel model, int threads) =>
            threads <= 1 ? DefaultRamBudgetBytes
                : DefaultRamBudgetBytes + (threads - 1) * (Smallest(model, threads: 2).RamBytes - Smallest(model).RamBytes);

        /// <param name="weightGroupShorts">The weight group buffer (int16 values); grown to one row of the widest layer if needed.</param>
        /// <param name="accLongs">The accumulator buffer (64-bit values).</param>
        /// <param name="ramBudgetBytes">Band heights are chosen so the whole plan stays within this.</param>
        /// <param name="referenceKernels">Run the reference conv kernel even where the SIMD one is available.</param>
        /// <param name="threads">Threads one frame runs on (the per-thread buffers are counted T times).</param>
        /// <exception cref="PlanException">The layer table is not a ResNet this planner knows, or even one-row bands need more RAM than <paramref name="ramBudgetBytes"/>.</exception>
        public ExecutionPlan(QModel model, int weightGroupShorts = 32768, int accLongs = 8192, long ramBudgetBytes = DefaultRamBudgetBytes, bool referenceKernels = false, int threads = 1)
            : this(model, weightGroupShorts, accLongs, ramBudgetBytes, referenceKernels, threads, enforceBudget: true) { }

        /// <summary>The plan with the least RAM there is: one-row bands wherever scratch does not fit for free (tests and the footprint's floor).</summary>
        public static ExecutionPlan Smallest(QModel model, bool referenceKernels = false, int threads = 1) =>
            new ExecutionPlan(model, 32768, 8192, 0, referenceKernels, threads, enforceBudget: false);

        ExecutionPlan(QModel model, int weightGroupShorts, int accLongs, long ramBudgetBytes, bool referenceKernels, int threads, bool enforceBudget)
        {
            if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), "a plan needs at least one thread");
            Model = model;
            Threads = threads;
            SimdKernels = FastConv.IsSupported && !referenceKernels;
            WeightGroupShorts = weightGroupShorts;
            MaxAccLongs = accLongs;
            var layers = model.Layers;
            Kernels = new ConvKernel[layers.Length];
            for (int i = 0; i < layers.Length; i++)
            {
                var l = layers[i];
                if (l.Op != QOp.Conv) continue;
                Kernels[i] = ConvDispatch.Select(l, SimdKernels);
                SplitWeights |= Kernels[i] == ConvKernel.SimdSplit;
                int block = ConvDispatch.ChannelBlock(Kernels[i]);
                WeightGroupShorts = Math.Max(WeightGroupShorts, l.WeightStride * block);
                if (block > 1) UnpackRowShorts = Math.Max(UnpackRowShorts, l.WeightStride);
                MaxAccLongs = Math.Max(MaxAccLongs, l.OutW);
                Im2ColShorts = Math.Max(Im2ColShorts, ConvDispatch.ScratchShortsPerRow(l, Kernels[i]));
            }
            Recognise(layers);

            // Tensor area: the largest tensor. Block tensors start at 0; the stem writes its output at the
            // end of the area, so a block that widens it (2a) can write its output from 0 upwards.
            int area = model.InputSize;
            foreach (var l in layers) area = Math.Max(area, l.WideOutput ? 0 : l.OutSize);
            TensorAreaShorts = area;
            for (int k = 0; k < Steps.Length; k++)
            {
                var s = Steps[k];
                s.OutputOffset = s.Kind == StepKind.Stem ? area - layers[s.Pool].OutSize : 0;
                s.InputOffset = k == 0 ? 0 : Steps[k - 1].OutputOffset;
                if (s.Kind == StepKind.Stem && s.InputOffset + model.InputSize > s.OutputOffset)
                    throw new PlanException("the input frame and the stem output do not fit side by side in the tensor area");
            }

            // Band heights: as tall as the RAM budget allows (fewer bands = fewer weight re-reads).
            _groupSizes = new int[layers.Length];
            for (int i = 0; i < layers.Length; i++)
            {
                var l = layers[i];
                if (l.Op != QOp.Conv) continue;
                _groupSizes[i] = GroupSizeOf(l, Kernels[i]);
                MaxRowBytesGroup = Math.Max(MaxRowBytesGroup, Math.Max(l.BnSize, _groupSizes[i] * l.RowBytes));
                MaxChannels = Math.Max(MaxChannels, l.OutC);
            }
            long scratchBudget = Math.Max(0, ramBudgetBytes - BuffersBytes(TensorAreaShorts + Im2ColShorts * Threads)) / 2;
            foreach (var s in Steps)
            {
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
                if (tensorsEnd + s.ScratchTotal <= TensorAreaShorts) s.ScratchOffset = tensorsEnd;
                else
                {
                    s.ScratchOffset = TensorAreaShorts;
                    ScratchShorts = Math.Max(ScratchShorts, s.ScratchTotal);
                }
                CheckInPlace(s);
            }
            // Below its budget the planner shrinks bands down to one row, so a plan still over budget is the smallest there is.
            if (enforceBudget && RamBytes > ramBudgetBytes)
                throw new PlanException($"this image needs {RamBytes:N0} B of RAM even with one-row bands, more than the RAM budget of {ramBudgetBytes:N0} B; raise the budget to at least that, or pack a smaller network for this board", RamBytes);
        }

        /// <summary>One past the last tensor-area value the step's input and output occupy.</summary>
        public int TensorsEnd(PlanStep s)
        {
            var L = Model.Layers;
            switch (s.Kind)
            {
                case StepKind.Stem: return TensorAreaShorts; // input at the start, output at the end
                case StepKind.Bottleneck: return Math.Max(s.InputOffset + L[s.A].InSize, s.OutputOffset + L[s.C].OutSize);
                default: return s.InputOffset + L[s.Gap].InSize;
            }
        }

        int OutRows(PlanStep s) => s.Kind == StepKind.Stem ? Model.Layers[s.Pool].OutH : s.Kind == StepKind.Bottleneck ? Model.Layers[s.C].OutH : 1;

        void Size(PlanStep s)
        {
            var L = Model.Layers;
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
                    s.RingShorts = Math.Min(a.OutH, RowsNeeded(b, r)) * a.OutW * a.OutC;
                    s.BandShorts = r * b.OutW * b.OutC;
                    s.ShortcutShorts = s.P >= 0 ? r * c.OutW * c.OutC : 0;
                    s.GroupShortsPerThread = r * c.OutW * GroupSize(s.C);
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
            var L = Model.Layers;
            var a = L[s.A]; var b = L[s.B]; var c = L[s.C];
            long rowX = (long)a.InW * a.InC, rowY = (long)c.OutW * c.OutC;
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
            var L = Model.Layers;
            if (s.Kind == StepKind.Stem) return L[s.A].Name + "+" + L[s.Pool].Name;
            if (s.Kind == StepKind.Head) return L[s.Gap].Name + "+" + L[s.Fc].Name;
            string a = L[s.A].Name;
            int k = a.IndexOf("_branch2a");
            return k < 0 ? a : a.Substring(0, k) + a.Substring(k + "_branch2a".Length);
        }

        /// <summary>A readable schedule: one line per step.</summary>
        public string Describe()
        {
            string text = "";
            foreach (var s in Steps)
            {
                string name = StepName(s);
                text += $"{s.Kind,-10} {name,-26} bands {s.Bands,2} x {s.BandRows,3} rows  in@{2L * s.InputOffset,9:N0} B  out@{2L * s.OutputOffset,9:N0} B  scratch {2L * s.ScratchTotal,9:N0} B@{2L * s.ScratchOffset,9:N0}\n";
            }
            return text;
        }
    }
}
