using EdgeResNet.Tools.Reports;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class BoardProfileTests
{
    /// <summary>The board data file loads into the profiles footprint uses, with the figures of the boards' datasheets.</summary>
    [TestMethod]
    public void BoardsComeFromTheDataFile()
    {
        CollectionAssert.AreEqual(new[] { "meadow-f7v2", "rpi-zero-2w", "stm32h747" }, BoardProfile.All.Select(b => b.Name).ToArray());
        var h7 = BoardProfile.Find("STM32H747");
        Assert.AreEqual((64L * 1024 * 1024, 1024L * 1024), (h7.FlashBytes, h7.RamBytes));
        Assert.AreEqual(32L * 1024 * 1024, BoardProfile.Find("meadow-f7v2").RamBytes);
        StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.UsageException>(() => BoardProfile.Find("esp32")).Message, "known boards: meadow-f7v2, rpi-zero-2w, stm32h747");
    }
}
