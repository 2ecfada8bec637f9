#if !NANOFRAMEWORK
using System;
using System.Threading;

namespace EdgeResNet.Runtime.Engine
{
    /// <summary>
    /// T - 1 background threads that run one job with the caller: <see cref="Run"/> wakes each with its index,
    /// runs index 0 itself and returns when all are done, so a frame's work splits over T threads. The threads
    /// live as long as the engine and a job allocates nothing. A worker's exception is rethrown by <see cref="Run"/> as it was.
    /// </summary>
    sealed class Crew : IDisposable
    {
        /// <summary>How long a worker spins for the next job before it sleeps: the jobs of one frame come microseconds apart, and waking a sleeping core (a halted vCPU above all) takes far longer.</summary>
        static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 1000;

        readonly Action<int> _work;
        readonly ManualResetEventSlim[] _wake;
        readonly Thread[] _threads;
        int _generation, _remaining;
        volatile bool _stopping;
        Exception? _failure;

        public Crew(int threads, Action<int> work)
        {
            _work = work;
            _wake = new ManualResetEventSlim[threads - 1];
            _threads = new Thread[threads - 1];
            for (int i = 0; i < _threads.Length; i++)
            {
                _wake[i] = new ManualResetEventSlim(false);
                int index = i + 1;
                _threads[i] = new Thread(() => Loop(index)) { IsBackground = true, Name = "edgeresnet-" + index };
                _threads[i].Start();
            }
        }

        public void Run()
        {
            Volatile.Write(ref _remaining, _threads.Length);
            Interlocked.Increment(ref _generation);
            foreach (var wake in _wake) wake.Set();
            try { _work(0); }
            finally
            {
                var spin = new SpinWait();
                while (Volatile.Read(ref _remaining) > 0)
#if NET
                    spin.SpinOnce(-1); // never Sleep(1): the others finish within the job
#else
                    spin.SpinOnce();
#endif
            }
            var failure = Interlocked.Exchange(ref _failure, null);
            if (failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw(); // as the caller's own
        }

        void Loop(int index)
        {
            var wake = _wake[index - 1];
            int seen = 0;
            while (true)
            {
                long since = System.Diagnostics.Stopwatch.GetTimestamp();
                while (Volatile.Read(ref _generation) == seen && !_stopping)
                {
                    if (System.Diagnostics.Stopwatch.GetTimestamp() - since < SpinTicks) { Thread.SpinWait(20); continue; }
                    // Reset, then look again: a job announced in between is seen, not lost.
                    wake.Reset();
                    if (Volatile.Read(ref _generation) == seen && !_stopping) wake.Wait();
                    since = System.Diagnostics.Stopwatch.GetTimestamp();
                }
                if (_stopping) return;
                seen = Volatile.Read(ref _generation);
                try { _work(index); }
                catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
                finally { Interlocked.Decrement(ref _remaining); }
            }
        }

        public void Dispose()
        {
            _stopping = true;
            foreach (var wake in _wake) wake.Set();
            foreach (var t in _threads) t.Join();
        }
    }
}
#endif
