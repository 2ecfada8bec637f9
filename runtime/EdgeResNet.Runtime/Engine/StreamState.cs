using System;

namespace EdgeResNet.Runtime.Engine
{
    /// <summary>
    /// Where a streamed segment stands between its bands: per step, the output rows produced and the rows its ring has
    /// computed (A rows; the stem's conv rows); per window, the first row it keeps and one past the last row written. The
    /// planner runs the bands through it to size the windows and the engine to slide them, so the plan's sizes are what
    /// the engine does: a window drops a row only once no step (and not the sink) reads it again.
    /// </summary>
    public sealed class StreamState
    {
        readonly ExecutionPlan _plan;
        public readonly int[] Produced, Computed, WindowBase, WindowEnd;

        public StreamState(ExecutionPlan plan)
        {
            _plan = plan;
            int steps = plan.SegmentEnd + 1;
            Produced = new int[steps];
            Computed = new int[steps];
            WindowBase = new int[plan.Windows.Length];
            WindowEnd = new int[plan.Windows.Length];
        }

        public void Reset()
        {
            Array.Clear(Produced, 0, Produced.Length);
            Array.Clear(Computed, 0, Computed.Length);
            Array.Clear(WindowBase, 0, WindowBase.Length);
            Array.Clear(WindowEnd, 0, WindowEnd.Length);
        }

        /// <summary>
        /// The lowest row of window <paramref name="w"/> still in use: read by a step of the segment, or written next by
        /// one (the sink takes each band of the last step at once).
        /// </summary>
        public int Low(int w)
        {
            int low = int.MaxValue;
            for (int k = 0; k <= _plan.SegmentEnd; k++)
            {
                var s = _plan.Steps[k];
                if (s.InWindow == w) low = Math.Min(low, _plan.NextInputRow(s, Produced[k], Computed[k]));
                if (s.OutWindow == w && Produced[k] < _plan.OutRows(s)) low = Math.Min(low, Produced[k]);
            }
            return low;
        }

        /// <summary>Moves window <paramref name="w"/>'s first row up to <see cref="Low"/>; false when it stays (a whole window always does).</summary>
        public bool Advance(int w) => !_plan.Windows[w].Whole && MoveBase(ref WindowBase[w], ref WindowEnd[w], Low(w));

        /// <summary>
        /// The bookkeeping of a window of rows [baseRow, endRow) that drops the rows below <paramref name="lo"/> (false: none);
        /// rows no one reads (a stride skips them) are never kept. The engine's windows and rings move by it.
        /// </summary>
        public static bool MoveBase(ref int baseRow, ref int endRow, int lo)
        {
            if (lo <= baseRow) return false;
            baseRow = lo;
            if (endRow < lo) endRow = lo;
            return true;
        }

        /// <summary>
        /// Before band <paramref name="band"/>: the input rows [from, to) it reads that are not in the input window yet
        /// (empty unless it is a band of the stem), marked as there.
        /// </summary>
        public void Fetch(int band, out int from, out int to)
        {
            from = to = 0;
            int k = _plan.BandStep[band];
            var s = _plan.Steps[k];
            if (s.Kind != StepKind.Stem) return;
            from = WindowEnd[s.InWindow];
            to = Math.Max(from, _plan.InputEnd(s, _plan.BandStart[band], _plan.BandEnd[band], Computed[k]));
            WindowEnd[s.InWindow] = to;
        }

        /// <summary>Band <paramref name="band"/> of the plan has run.</summary>
        public void Done(int band)
        {
            int k = _plan.BandStep[band], r0 = _plan.BandStart[band], r1 = _plan.BandEnd[band];
            var s = _plan.Steps[k];
            Computed[k] = Math.Max(Computed[k], _plan.RingEnd(s, r0, r1));
            Produced[k] = r1;
            if (WindowEnd[s.OutWindow] < r1) WindowEnd[s.OutWindow] = r1;
            if (s.SinkWindow >= 0)
            {
                // every stride-th row of the first phase's output goes to the whole window
                int written = ExecutionPlan.SinkRowsOf(r1, _plan.SinkStrideInto(k + 1));
                if (WindowEnd[s.SinkWindow] < written) WindowEnd[s.SinkWindow] = written;
            }
        }
    }
}
