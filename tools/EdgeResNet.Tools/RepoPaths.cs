namespace EdgeResNet.Tools;

/// <summary>Locates the repository and the shared sample images beside it.</summary>
public static class RepoPaths
{
    /// <summary>The folder holding EdgeResNet.sln, searched upward from the working directory and then from the program's folder.</summary>
    public static string? FindRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "EdgeResNet.sln"))) return dir.FullName;
        return null;
    }

    /// <summary>../shared/imagenet-samples next to the repository, or null when absent.</summary>
    public static string? SampleImages()
    {
        var root = FindRoot();
        if (root == null) return null;
        var dir = Path.GetFullPath(Path.Combine(root, "..", "shared", "imagenet-samples"));
        return Directory.Exists(dir) ? dir : null;
    }
}
