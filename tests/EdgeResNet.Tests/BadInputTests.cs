using EdgeResNet.Common;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Reports;

namespace EdgeResNet.Tests;

/// <summary>Bad inputs found by trying the tools as a careless or hostile user (issue 17): each one a clear error, never a stack trace or a stray file.</summary>
[TestClass]
public sealed class BadInputTests
{
    [TestMethod]
    public void ABadLabelsLineIsRefusedWithItsLineNumber()
    {
        using var temp = new TempDirectory();
        string dir = temp.Path;
        foreach (var (line, message) in new[]
        {
            ("a.jpg\t1000\tn0", "labels.tsv:2: class index 1000 is outside 0..999"),
            ("a.jpg\t-1\tn0", "labels.tsv:2: class index -1"),
            ("../../etc/passwd\t3\tn0", "labels.tsv:2: '../../etc/passwd' is not a file name inside"),
            ("/etc/passwd\t3\tn0", "labels.tsv:2: '/etc/passwd' is not a file name inside"),
            ("ok.jpg\t4\tn0", "labels.tsv:2: 'ok.jpg' is listed again (first on line 1)"),
            ("b.jpg\tseven", "labels.tsv:2: expected filename<TAB>class_index<TAB>synset"),
        })
        {
            File.WriteAllText(Path.Combine(dir, "labels.tsv"), $"ok.jpg\t3\tn0\n{line}\n");
            StringAssert.Contains(Assert.ThrowsExactly<FormatException>(() => Dataset.Load(dir)).Message, message, line);
        }
    }

    [TestMethod]
    public void AnUnreadablePhotoSaysWhatItIs()
    {
        using var temp = new TempDirectory();
        string dir = temp.Path;
        File.WriteAllBytes(Path.Combine(dir, "empty.jpg"), []);
        File.WriteAllText(Path.Combine(dir, "notes.jpg"), "these are notes, not a photo");
        StringAssert.EndsWith(Assert.ThrowsExactly<ImageDecodeException>(() => ImageFile.Decode(Path.Combine(dir, "empty.jpg"))).Message, ": empty file");
        StringAssert.Contains(Assert.ThrowsExactly<ImageDecodeException>(() => ImageFile.Decode(Path.Combine(dir, "notes.jpg"))).Message, "not a JPEG, PNG, BMP, GIF or WebP image");
        StringAssert.Contains(Assert.ThrowsExactly<ImageDecodeException>(() => ImageFile.Decode(dir)).Message, "a directory, not an image file");
        StringAssert.Contains(Assert.ThrowsExactly<ImageDecodeException>(() => ImageFile.Decode(Path.Combine(dir, "missing.jpg"))).Message, "file not found");
    }

    /// <summary>Outputs are checked before the work (pack calibrates for a minute first): a directory, or a folder that cannot exist.</summary>
    [TestMethod]
    public void AnOutputThatCannotBeWrittenIsRefusedBeforeTheWork()
    {
        using var temp = new TempDirectory();
        string dir = temp.Path;
        string aFile = Path.Combine(dir, "plain.txt");
        File.WriteAllText(aFile, "x");
        StringAssert.Contains(Assert.ThrowsExactly<IOException>(() => AtomicFile.CheckWritable(dir)).Message, "is a directory");
        var e = Assert.ThrowsExactly<IOException>(() => AtomicFile.CheckWritable(Path.Combine(aFile, "out.img")));
        StringAssert.Contains(e.Message, "cannot write");
        Assert.AreEqual(ExitCodes.BadInput, ExitCodes.Classify(e));
        AtomicFile.CheckWritable(Path.Combine(dir, "new", "out.img"));
        CollectionAssert.AreEquivalent(new[] { "plain.txt" }, Directory.GetFiles(dir).Select(Path.GetFileName).ToArray(), "the check leaves no file behind");
    }

    [TestMethod]
    public void ATemporaryLeftByAKilledRunIsRemovedOnTheNextWrite()
    {
        using var temp = new TempDirectory();
        string dir = temp.Path;
        string target = Path.Combine(dir, "out.img");
        string stale = target + ".tmp-2147483646-1", mine = target + $".tmp-{Environment.ProcessId}-999";
        string recent = target + ".tmp-2147483645-1";
        File.WriteAllText(stale, "half an image");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-2));
        File.WriteAllText(recent, "maybe a writer this process cannot see (another PID namespace)");
        File.WriteAllText(mine, "this process's own, in use");
        AtomicFile.WriteAllText(target, "image");
        Assert.IsFalse(File.Exists(stale), "an hour-old temporary of a dead process is removed");
        Assert.IsTrue(File.Exists(recent), "a recent one is kept");
        Assert.IsTrue(File.Exists(mine), "a live process's temporary is kept");
        Assert.AreEqual("image", File.ReadAllText(target));
    }

    [TestMethod]
    public void PackOptionsOutOfRangeNameTheOptionNotTheParameter()
    {
        var e = Assert.ThrowsExactly<UsageException>(() => new QuantOptions(WeightBits: 0).Validate());
        Assert.AreEqual("--bits 0: weight bits must be 2..16", e.Message);
        StringAssert.Contains(Assert.ThrowsExactly<UsageException>(() => new QuantOptions(ActivationBits: 3).Validate()).Message, "--act-bits 3");
    }

    [TestMethod]
    public void AnImpossibleRamBudgetNamesTheSmallestPlan()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        string path = image.Path;
        var q = Quantizer.QuantizeInput(inputs[0], model);
        long smallest = ExecutionPlan.Smallest(model).RamBytes;
        StringAssert.Contains(Assert.ThrowsExactly<UsageException>(() => Footprint.Measure(path, q, -5, [])).Message, "--ram-budget -5: give a positive number");
        var e = Assert.ThrowsExactly<UsageException>(() => Footprint.Measure(path, q, 1000, []));
        StringAssert.Contains(e.Message, $"below the smallest plan for this image, {smallest:N0} B");
        Assert.AreEqual(smallest, Footprint.Measure(path, q, smallest, []).RuntimeRamBytes, "the smallest plan itself is accepted");
    }

    /// <summary>
    /// Every CRC valid, the geometry absurd: the reader refuses shapes past its limits by name (x256 and x1024,
    /// whose MAC count once overflowed int32), and a plan that cannot fit the RAM budget is refused by the
    /// planner with the RAM it would need (x64: even streamed, its tensors are too large), instead of planning hundreds of MB and carrying on.
    /// </summary>
    [TestMethod]
    public void AbsurdGeometryIsRefusedByTheReaderAndAnOversizedPlanByThePlanner()
    {
        int size = RuntimeTests.MiniPacked(new QuantOptions()).Model.InputH;
        foreach (int factor in new[] { 256, 1024 })
        {
            var e = Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(LoaderFuzzTests.MiniImageWithInput(size * factor))));
            StringAssert.Contains(e.Message, $"header: input shape {size * factor}x{size * factor}x3 exceeds the limits");
        }
        var big = FlashImage.Open(new MemoryFlash(LoaderFuzzTests.MiniImageWithInput(size * 64))).Model;
        Assert.AreEqual(big.Layers.Sum(l => l.Op == QOp.Conv ? (long)l.OutH * l.OutW * l.OutC * l.KernelH * l.KernelW * l.InC : 0), big.Macs, "MACs in 64 bits");
        var refused = Assert.ThrowsExactly<PlanException>(() => new ExecutionPlan(big));
        long smallest = ExecutionPlan.Smallest(big).RamBytes;
        Assert.AreEqual(smallest, refused.SmallestRamBytes);
        Assert.IsGreaterThan(ExecutionPlan.DefaultRamBudgetBytes, smallest);
        StringAssert.Contains(refused.Message, $"this image needs {smallest:N0} B of RAM in its smallest plan, more than the RAM budget of {ExecutionPlan.DefaultRamBudgetBytes:N0} B");
        Assert.AreEqual(ExitCodes.BadInput, ExitCodes.Classify(refused));
        Assert.AreEqual(smallest, new ExecutionPlan(big, ramBudgetBytes: smallest).RamBytes, "the smallest plan fits a budget of its own size");
    }

    /// <summary>A flipped padding byte between two sections: refused alike by a full verification (inspect) and by the board's streaming start.</summary>
    [TestMethod]
    public void AFlippedPaddingByteIsRefusedByBothWaysOfOpening()
    {
        var bytes = RuntimeTests.MiniPacked(new QuantOptions()).Image;
        var first = FlashImage.Open(new MemoryFlash(bytes)).Model.Layers.First(l => l.Op == QOp.Conv);
        long padding = first.BnOffset + first.BnSize; // the gap up to the next sector-aligned weights section
        Assert.AreEqual(0, bytes[padding]);
        bytes[padding] ^= 0x10;
        string expected = $"image: padding byte at offset {padding} is 0x10, not 0";
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bytes))).Message, expected);
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.OpenVerifyingWhileStreaming(new MemoryFlash(bytes), out _)).Message, expected);
        bytes[padding] ^= 0x10;
        FlashImage.OpenVerifyingWhileStreaming(new MemoryFlash(bytes), out _); // intact again
    }

    /// <summary>
    /// pack measures the packed image against float on its calibration inputs: the mini network at the
    /// default widths agrees, and with weights and activations at 4 bits it collapses, which pack refuses
    /// with exit 4 (BelowTargetException) instead of exiting 0 with a useless model.
    /// </summary>
    [TestMethod]
    public void PackMeasuresAgreementWithFloatAndRefusesACollapsedModel()
    {
        var net = EdgeResNet.Tools.Model.MiniResNet.Build(5);
        var rng = new Random(5);
        var inputs = Enumerable.Range(0, 40).Select(_ => Enumerable.Range(0, net.Input.OutShape.Size).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray()).ToArray();
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "mini.img");
        var good = Packer.Pack(net, inputs.Length, i => inputs[i], new QuantOptions(), path, threads: 2);
        Console.WriteLine($"default widths: agreement {good.AgreementTop1:P1} on {good.CheckedInputs} inputs");
        Assert.AreEqual(inputs.Length, good.CheckedInputs);
        Assert.IsGreaterThanOrEqualTo(Packer.DefaultMinAgreement, good.AgreementTop1);
        good.CheckAgreement(Packer.DefaultMinAgreement);
        var bad = Packer.Pack(net, inputs.Length, i => inputs[i], new QuantOptions(4, 4), path, threads: 2);
        Console.WriteLine($"4-bit weights and activations: agreement {bad.AgreementTop1:P1}");
        var e = Assert.ThrowsExactly<BelowTargetException>(() => bad.CheckAgreement(Packer.DefaultMinAgreement));
        StringAssert.Contains(e.Message, $"THE PACKED MODEL HAS COLLAPSED: it agrees with float on only {bad.AgreementTop1:P1} of the 40 calibration photos");
        Assert.AreEqual(ExitCodes.BelowTarget, ExitCodes.Classify(e));
    }

    sealed class FixedClassifier : IClassifier
    {
        public int Calls;
        public string Name => "fixed";
        public string Engine => "a stand-in that always answers class 7";
        public double[] Logits(float[] input) { Interlocked.Increment(ref Calls); var l = new double[1000]; l[7] = 1; return l; }
    }

    /// <summary>A labels.tsv naming a missing file or a directory: the run goes on, names them, and the float cache skips them.</summary>
    [TestMethod]
    public void EvalGoesOnPastMissingFilesAndDirectories()
    {
        string photo = Dataset.Load(SampleImages.DirOrInconclusive(), Split.All, 1)[0].Path;
        using var temp = new TempDirectory();
        string dir = temp.Path;
        File.Copy(photo, Path.Combine(dir, "good.jpg")); // a temporary copy outside the repository
        Directory.CreateDirectory(Path.Combine(dir, "adir"));
        File.WriteAllText(Path.Combine(dir, "labels.tsv"), "good.jpg\t7\tn0\nmissing.jpg\t7\tn0\nadir\t7\tn0\n");
        var set = Dataset.Load(dir);
        var model = new FixedClassifier();
        var report = Evaluator.Run("fixed", set, x => Evaluator.TopK(model.Logits(x), 5), threads: 2);
        Assert.AreEqual(1, report.Images);
        Assert.HasCount(2, report.Errors);
        Assert.IsTrue(report.Errors.Any(e => e.EndsWith("missing.jpg: file not found")) && report.Errors.Any(e => e.EndsWith("adir: a directory, not an image file")), string.Join("; ", report.Errors));
        var cache = new FloatPredictionCache(dir);
        var top1 = cache.Top1(set, () => model, threads: 2);
        CollectionAssert.AreEqual(new[] { "good.jpg" }, top1.Keys.ToArray());
        Assert.AreEqual(7, top1["good.jpg"]);
        Assert.AreEqual(1.0, report.WithAgreement(top1).AgreementTop1);
    }

    /// <summary>Only commands meant to fill a chip create an emulated one; a file of another size is not taken for a chip.</summary>
    [TestMethod]
    public void AnEmulatedChipIsCreatedOnlyWhenAskedAndAWrongFileIsNamed()
    {
        using var temp = new TempDirectory();
        string dir = temp.Path;
        string chip = Path.Combine(dir, "typo.bin");
        var e = Assert.ThrowsExactly<FileNotFoundException>(() => EdgeResNet.Flashing.SpiNor.SpiNorDevices.OpenEmulated(chip));
        StringAssert.Contains(e.Message, "edgeresnet flash --image IMG --spi-emulation");
        Assert.IsFalse(File.Exists(chip), "no file made by a reading command");
        string other = Path.Combine(dir, "notes.txt");
        File.WriteAllText(other, "not a chip");
        var wrong = Assert.ThrowsExactly<InvalidDataException>(() => EdgeResNet.Flashing.SpiNor.SpiNorDevices.OpenEmulated(other, create: true));
        StringAssert.Contains(wrong.Message, "not an emulated 67,108,864-byte chip");
        Assert.AreEqual(ExitCodes.BadInput, ExitCodes.Classify(wrong));
        using (var made = EdgeResNet.Flashing.SpiNor.SpiNorDevices.OpenEmulated(chip, create: true))
            StringAssert.EndsWith(made.Description, "(created, erased)");
        Assert.AreEqual(64L << 20, new FileInfo(chip).Length);
    }
}
