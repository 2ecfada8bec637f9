using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Tests;

/// <summary>The plan's RAM figure is what the engine allocates: measured on this thread around the engine's construction.</summary>
static class EngineHeap
{
    // The host's one-time setup of the first thread it starts (a few KB, more on some hosts than others; a few hundred bytes
    // for each one after) is the process's, like the JIT's, not an engine's: started once here so a crew counts what it starts.
    static EngineHeap()
    {
        var first = new Thread(() => { }) { IsBackground = true, Name = "edgeresnet-host-setup" };
        first.Start();
        first.Join();
    }

    /// <summary>A new engine for <paramref name="plan"/>, after checking its heap: to the byte on one thread; on more, within what the host may take to start the others.</summary>
    public static InferenceEngine New(FlashImage image, ExecutionPlan plan)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var engine = new InferenceEngine(image, plan);
        long heap = GC.GetAllocatedBytesForCurrentThread() - before;
        if (plan.Threads == 1)
            Assert.AreEqual(plan.RamBytes, heap, "the engine heap must be what the plan says (a field added to the engine, a lane or the stream state: ExecutionPlan.EngineObjectBytes)");
        else
            Assert.IsTrue(heap <= plan.RamBytes && heap > plan.RamBytes - (plan.Threads - 1) * ExecutionPlan.CrewBytesPerThread,
                $"engine heap {heap} B, plan says {plan.RamBytes} B with {ExecutionPlan.CrewBytesPerThread} B to start each of {plan.Threads - 1} more thread(s)");
        return engine;
    }
}
