using EdgeResNet.Tools;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class AtomicFileTests
{
    [TestMethod]
    public void AFailedWriteKeepsTheOldFileAndLeavesNoTemporary()
    {
        var dir = Directory.CreateTempSubdirectory("edgeresnet-atomic-").FullName;
        try
        {
            string target = Path.Combine(dir, "report.json");
            AtomicFile.WriteAllText(target, "old");
            Assert.ThrowsExactly<IOException>(() => AtomicFile.Write(target, s =>
            {
                s.Write(new byte[100]);
                throw new IOException("disk full");
            }));
            Assert.AreEqual("old", File.ReadAllText(target));
            CollectionAssert.AreEqual(new[] { "report.json" }, Directory.GetFiles(dir).Select(Path.GetFileName).ToArray());
        }
        finally { Directory.Delete(dir, true); }
    }

    [TestMethod]
    public void ATargetThatCannotBeReplacedLeavesNoTemporary()
    {
        var dir = Directory.CreateTempSubdirectory("edgeresnet-atomic-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "model.onnx")); // a folder where the file should go
            Assert.ThrowsExactly<IOException>(() => AtomicFile.WriteAllBytes(Path.Combine(dir, "model.onnx"), [1, 2, 3]));
            Assert.IsEmpty(Directory.GetFiles(dir));
        }
        finally { Directory.Delete(dir, true); }
    }
}
