using System.Diagnostics;
using EdgeResNet.Common.Signing;
using EdgeResNet.Flashing.Emulation;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Flashing.SpiNor;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>
/// Power cut at every flash operation of a signed update, on the emulated SPI NOR chip through the real
/// driver: after each cut the board must boot the old or the new image, whole and correctly signed, and
/// a rerun of the update must finish it.
/// </summary>
[TestClass]
public sealed class PowerLossTests
{
    const long Capacity = 256 << 10; // two 128 KiB slots: the mini images are about 67 KB
    static readonly Lazy<byte[]> Older = new(() => SigningTests.Signed(RuntimeTests.MiniPacked(new QuantOptions(), 5).Image, 1));
    static readonly Lazy<byte[]> Old = new(() => SigningTests.Signed(RuntimeTests.MiniPacked(new QuantOptions(), 3).Image, 1));
    static readonly Lazy<byte[]> New = new(() => SigningTests.Signed(RuntimeTests.MiniPacked(new QuantOptions(), 4).Image, 2));

    static SlotStore Store(SpiNorChip chip) => new(new SpiNorFlash(chip), verifySections: true, trust: [SigningTests.Trusted.Value]);

    /// <summary>A board with an older image in slot A and the current one in slot B (booting): the update overwrites A, so it erases too.</summary>
    static readonly Lazy<SpiNorChip> BoardBeforeTheUpdate = new(() =>
    {
        var chip = new SpiNorChip(Capacity);
        SigningTests.Update(Store(chip), Older.Value);
        SigningTests.Update(Store(chip), Old.Value);
        return chip;
    });

    /// <summary>A copy of that board whose erases finish at the first status poll (the driver sleeps 1 ms per busy erase poll; a cut test needs no real time).</summary>
    static SpiNorChip Board()
    {
        var chip = BoardBeforeTheUpdate.Value.Clone();
        chip.SectorEraseBusyPolls = chip.BlockEraseBusyPolls = 0;
        return chip;
    }

    [TestMethod]
    public void EveryPowerCutOfAnUpdateBootsTheOldOrTheNewImage()
    {
        var dry = Board();
        long start = dry.Operations;
        SigningTests.Update(Store(dry), New.Value);
        long operations = dry.Operations - start;
        long cuts = 0, bricks = 0, oldBoots = 0, newBoots = 0;
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        for (long k = 0; k < operations; k++)
            foreach (bool mid in new[] { false, true })
            {
                var chip = Board();
                chip.CutPowerAfter(k, mid, seed: (int)k);
                try { SigningTests.Update(Store(chip), New.Value); }
                catch (Exception) when (chip.PoweredOff) { }
                Assert.IsTrue(chip.PoweredOff, $"the cut after {k} operations did not happen");
                cuts++;
                chip.PowerOn(); // the board restarts
                try
                {
                    var boot = Store(chip).Boot();
                    var back = new byte[boot.Region.Length];
                    boot.Region.Read(0, back);
                    bool isOld = back.AsSpan().SequenceEqual(Old.Value), isNew = back.AsSpan().SequenceEqual(New.Value);
                    if (!(isOld && boot.Slot == 'B') && !(isNew && boot.Slot == 'A')) failures.Add($"cut {k} ({(mid ? "mid" : "after")}): slot {boot.Slot} boots something else");
                    if (isOld) oldBoots++;
                    if (isNew) newBoots++;
                }
                catch (EdgeResNet.Runtime.Flash.FlashImageException e) { bricks++; failures.Add($"cut {k} ({(mid ? "mid" : "after")}): BRICK: {e.Message}"); }
                // The rerun resumes and completes the update.
                SigningTests.Update(Store(chip), New.Value);
                if (Store(chip).Boot().Slot != 'A') failures.Add($"cut {k}: the rerun did not make the new image boot");
            }
        Console.WriteLine($"power cuts: {cuts:N0} cut points ({operations:N0} program and erase operations of the update, each cut cleanly and mid-operation), " +
            $"{bricks} bricks; the old image booted after {oldBoots:N0}, the new after {newBoots:N0} (only a complete update commits it); every rerun completed the update; {clock.Elapsed.TotalSeconds:F1} s");
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(10)));
        // The record is programmed last and is the commit: a cut anywhere in the update, that one included, leaves the old image booting.
        Assert.AreEqual(cuts, oldBoots);
    }
}
