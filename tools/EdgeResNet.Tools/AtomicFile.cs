namespace EdgeResNet.Tools;

/// <summary>
/// Every file the tools write goes through here: into a temporary file beside the target, renamed
/// over it only when complete. On any failure the temporary file is removed and an older file at
/// the target is left as it was, so nothing is ever half-written.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Checks, before the work that produces it, that <paramref name="path"/> can be written: not a
    /// directory, its folder can be made and takes a new file. Throws an IOException that names the path.
    /// </summary>
    public static void CheckWritable(string path)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new IOException($"{path} is a directory; give a file name");
        string probe = $"{full}.tmp-{Environment.ProcessId}-probe";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (File.Create(probe)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot write {path} ({e.Message}); choose a writable location", e);
        }
        finally { if (File.Exists(probe)) File.Delete(probe); }
    }

    /// <summary>Temporaries of <paramref name="full"/> left by a process that no longer runs (killed mid-write), removed and named on stderr.</summary>
    static void RemoveStaleTemporaries(string full)
    {
        string dir = Path.GetDirectoryName(full)!, prefix = Path.GetFileName(full) + ".tmp-";
        if (!Directory.Exists(dir)) return;
        foreach (var tmp in Directory.EnumerateFiles(dir, prefix + "*"))
        {
            var pid = Path.GetFileName(tmp)[prefix.Length..].Split('-')[0];
            // A writer that no longer runs and an hour-old file: a PID namespace or hidepid can hide a live writer, not that.
            if (!int.TryParse(pid, out int id) || id == Environment.ProcessId || Directory.Exists($"/proc/{id}")
                || File.GetLastWriteTimeUtc(tmp) > DateTime.UtcNow.AddHours(-1)) continue;
            try { File.Delete(tmp); Console.Error.WriteLine($"removed {tmp}, left by an interrupted run (process {id})"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        RemoveStaleTemporaries(full);
        string tmp = $"{full}.tmp-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}";
        try
        {
            using (var stream = File.Create(tmp)) write(stream);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    public static void WriteAllText(string path, string text) => Write(path, s =>
    {
        using var writer = new StreamWriter(s);
        writer.Write(text);
    });
}
