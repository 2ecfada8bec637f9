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
        var chip = new SpiNorChip(Capacity) { SectorEraseBusyPolls = 0, BlockEraseBusyPolls = 0 };
        SigningTests.Update(Store(chip), Older.Value);
        SigningTests.Update(Store(chip), Old.Value);
        return chip;
    });

    static SpiNorChip Board() => Clone(BoardBeforeTheUpdate.Value);

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

    /// <summary>
    /// Random power cuts through an update of the real 10-bit image (the separate-scheme image booting,
    /// the folded one written over the other slot, both signed): 3 cuts in the test run,
    /// <c>POWER_CUTS=1000</c> (tools/scripts/power-cuts.sh) for the long run. After each cut the board must
    /// boot one of the two images, whole (its bytes hash to its signed SHA-256) and correctly signed.
    /// </summary>
    [TestMethod]
    public void RandomPowerCutsOfAFullImageUpdateNeverBrickTheBoard()
    {
        int cuts = int.TryParse(Environment.GetEnvironmentVariable("POWER_CUTS"), out var n) && n > 0 ? n : 3;
        var old = SigningTests.Signed(RealModelTests.Quantized(EdgeResNet.Runtime.BnScheme.Separate).Image, 1);
        var update = SigningTests.Signed(RealModelTests.Quantized(EdgeResNet.Runtime.BnScheme.Folded).Image, 2);
        var baseChip = new SpiNorChip(SpiNorChip.W25Q512JVCapacity) { SectorEraseBusyPolls = 0, BlockEraseBusyPolls = 0 };
        SigningTests.Update(Store(baseChip), old); // slot A
        SigningTests.Update(Store(baseChip), old); // slot B, booting: the update overwrites slot A, erasing as it goes
        var dry = Clone(baseChip);
        long start = dry.Operations;
        SigningTests.Update(Store(dry), update);
        long operations = dry.Operations - start;
        string Hash(byte[] file) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(file.AsSpan(0, file.Length - SignatureBlock.Size)));
        string oldHash = Hash(old), newHash = Hash(update);

        long bricks = 0, oldBoots = 0, newBoots = 0, mid = 0;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var clock = Stopwatch.StartNew();
        Parallel.For(0, cuts, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var rng = new Random(1000 + i);
            long k = rng.NextInt64(operations);
            bool midOperation = rng.Next(2) == 0;
            if (midOperation) Interlocked.Increment(ref mid);
            var chip = Clone(baseChip);
            chip.CutPowerAfter(k, midOperation, seed: i);
            try { SigningTests.Update(Store(chip), update); }
            catch (Exception) when (chip.PoweredOff) { }
            if (!chip.PoweredOff) { failures.Add($"cut {k}: did not happen"); return; }
            chip.PowerOn();
            try
            {
                var boot = Store(chip).Boot(); // every section CRC, the signature, and the image's SHA-256 against it
                var block = ImageSigning.ReadBlock(boot.Region, boot.Image.ImageSize, out _)!;
                string booted = Convert.ToHexString(block.ImageSha256);
                if (booted == oldHash && boot.Slot == 'B') Interlocked.Increment(ref oldBoots);
                else if (booted == newHash && boot.Slot == 'A') Interlocked.Increment(ref newBoots);
                else failures.Add($"cut {k}: slot {boot.Slot} boots an image that is neither");
            }
            catch (EdgeResNet.Runtime.Flash.FlashImageException e) { Interlocked.Increment(ref bricks); failures.Add($"cut {k}: BRICK: {e.Message}"); }
        });
        Console.WriteLine($"power cuts, full 10-bit image ({update.Length:N0} bytes, {operations:N0} program and erase operations): {cuts:N0} random cut points " +
            $"({mid:N0} mid-operation), {bricks} bricks; the old image booted after {oldBoots:N0}, the new after {newBoots:N0}; {clock.Elapsed.TotalSeconds:F0} s");
        Assert.IsEmpty(failures, string.Join("\n", failures.Take(10)));
    }

    /// <summary>A copy of a board whose erases finish at the first status poll (the driver sleeps 1 ms per busy erase poll; a cut test needs no real time).</summary>
    static SpiNorChip Clone(SpiNorChip chip)
    {
        var copy = chip.Clone();
        copy.SectorEraseBusyPolls = copy.BlockEraseBusyPolls = 0;
        return copy;
    }
}
