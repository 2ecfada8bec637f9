using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using EdgeResNet.Tools.Weights;

namespace EdgeResNet.Tests;

/// <summary>The cache logic on a small npm-style tarball pinned like the real one (no network needed).</summary>
[TestClass]
public sealed class WeightsCacheTests
{
    string _dir = null!;
    string _tarball = null!;
    PinnedPackage _pin = null!;

    [TestInitialize]
    public void MakeTarball()
    {
        _dir = Directory.CreateTempSubdirectory("edgeresnet-cache-").FullName;
        _tarball = Path.Combine(_dir, "source.tgz");
        using (var gz = new GZipStream(File.Create(_tarball), CompressionLevel.Fastest))
        using (var tar = new TarWriter(gz))
        {
            foreach (var (name, text) in new[] { ("package/ResNet50/model.json", "{\"modelTopology\":{}}"), ("package/assets/labels.json", "{\"0\":\"tench\"}") })
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)) };
                tar.WriteEntry(entry);
            }
        }
        using var s = File.OpenRead(_tarball);
        _pin = new PinnedPackage("tiny", "0.0.1", Convert.ToHexStringLower(SHA1.HashData(s)), new FileInfo(_tarball).Length);
    }

    [TestCleanup]
    public void Cleanup() => Directory.Delete(_dir, true);

    // npm is pointed at a missing program: these tests never reach the registry.
    WeightsCache Cache() => new(Path.Combine(_dir, "cache"), _pin, npmCommand: "/nonexistent/npm");

    [TestMethod]
    public void GoodCacheIsNotFetchedAgain()
    {
        var cache = Cache();
        Assert.AreEqual("not fetched yet", cache.Problem(hashes: true));
        string model = cache.Ensure(verifyHashes: true, _tarball);
        Assert.IsTrue(File.Exists(model));
        Assert.IsNull(cache.Problem(hashes: true));
        var stamp = Directory.GetFiles(cache.PackageDir, "files.sha256").Single();
        var before = File.GetLastWriteTimeUtc(stamp);
        File.Delete(cache.TarballPath); // a second fetch would need it (or npm): proves none happens
        cache.Ensure(verifyHashes: true);
        Assert.AreEqual(before, File.GetLastWriteTimeUtc(stamp));
    }

    [TestMethod]
    public void TruncatedFileIsDetectedAndRepaired()
    {
        var cache = Cache();
        string model = cache.Ensure(verifyHashes: true, _tarball);
        File.WriteAllText(model, "{");
        StringAssert.Contains(cache.Problem(hashes: false), "model.json has the wrong size");
        cache.Ensure(verifyHashes: false); // from the verified tarball kept in the cache
        Assert.IsNull(cache.Problem(hashes: true));
    }

    [TestMethod]
    public void SameSizeCorruptionIsDetectedByHash()
    {
        var cache = Cache();
        string model = cache.Ensure(verifyHashes: true, _tarball);
        var bytes = File.ReadAllBytes(model);
        bytes[3] ^= 0x20;
        File.WriteAllBytes(model, bytes);
        Assert.IsNull(cache.Problem(hashes: false));
        StringAssert.Contains(cache.Problem(hashes: true), "SHA-256");
        cache.Ensure(verifyHashes: true);
        Assert.IsNull(cache.Problem(hashes: true));
    }

    [TestMethod]
    public void InterruptedUnpackIsDetected()
    {
        var cache = Cache();
        Directory.CreateDirectory(cache.PackageDir);
        StringAssert.Contains(cache.Problem(hashes: false), "interrupted");
    }

    [TestMethod]
    public void WrongTarballIsRejectedAndNotKept()
    {
        var cache = Cache();
        var bytes = File.ReadAllBytes(_tarball);
        bytes[^1] ^= 1;
        string bad = Path.Combine(_dir, "bad.tgz");
        File.WriteAllBytes(bad, bytes);
        var e = Assert.ThrowsExactly<WeightsException>(() => cache.Ensure(verifyHashes: true, bad));
        StringAssert.Contains(e.Message, _pin.Sha1);
        Assert.IsFalse(File.Exists(cache.TarballPath));
        Assert.IsFalse(Directory.Exists(cache.PackageDir));
    }

    [TestMethod]
    public void CorruptCachedTarballIsDeletedNotUsed()
    {
        var cache = Cache();
        cache.Ensure(verifyHashes: true, _tarball);
        Directory.Delete(cache.PackageDir, true);
        File.WriteAllBytes(cache.TarballPath, new byte[_pin.Size]); // right size, wrong content
        // No valid tarball, so the cache must fetch again (here npm is missing: a clear error, nothing unpacked).
        var e = Assert.ThrowsExactly<WeightsException>(() => cache.Ensure(verifyHashes: true));
        StringAssert.Contains(e.Message, "npm was not found");
        Assert.IsFalse(Directory.Exists(cache.PackageDir));
        cache.Ensure(verifyHashes: true, _tarball); // a good tarball replaces the corrupt one
        Assert.IsNull(cache.Problem(hashes: true));
    }
}
