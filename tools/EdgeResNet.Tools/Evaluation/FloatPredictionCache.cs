using System.Security.Cryptography;

namespace EdgeResNet.Tools.Evaluation;

/// <summary>
/// The float model's top-5 per image, remembered by the SHA-256 of the image file in a TSV in
/// the weights cache, so agreement figures and sweeps run the float model once per photo.
/// </summary>
public sealed class FloatPredictionCache
{
    readonly string _path;
    readonly Dictionary<string, int[]> _top5 = new();

    public FloatPredictionCache(string cacheDir)
    {
        _path = Path.Combine(cacheDir, "float-top5.tsv");
        if (!File.Exists(_path)) return;
        foreach (var line in File.ReadLines(_path))
        {
            var f = line.Split('\t');
            if (f.Length == 2 && f[1].Split(',').Select(s => int.TryParse(s, out var v) ? v : -1).ToArray() is { Length: 5 } t && t.All(v => v >= 0))
                _top5[f[0]] = t;
        }
    }

    /// <summary>The SHA-256 of the file, or null when it cannot be read (missing, a directory): the evaluation names those itself.</summary>
    public static string? KeyOf(string imagePath)
    {
        try
        {
            using var s = File.OpenRead(imagePath);
            return Convert.ToHexStringLower(SHA256.HashData(s));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Top-1 of the float model by file name for every readable image, running the float model only where the cache lacks it.</summary>
    public Dictionary<string, int> Top1(IReadOnlyList<LabeledImage> images, Func<IClassifier> floatModel, int threads, Action<int, int>? progress = null)
    {
        var keys = new Dictionary<string, string>();
        foreach (var i in images)
            if (KeyOf(i.Path) is string key) keys[i.FileName] = key;
        var missing = images.Where(i => keys.TryGetValue(i.FileName, out var k) && !_top5.ContainsKey(k)).ToList();
        if (missing.Count > 0)
        {
            var model = floatModel();
            var report = Evaluator.Run(model.Name, missing, input => Evaluator.TopK(model.Logits(input), 5), threads, done => progress?.Invoke(done, missing.Count));
            foreach (var p in report.Predictions) _top5[keys[p.File]] = p.Top5;
            Save();
        }
        return images.Where(i => keys.TryGetValue(i.FileName, out var k) && _top5.ContainsKey(k)).ToDictionary(i => i.FileName, i => _top5[keys[i.FileName]][0]);
    }

    void Save()
    {
        AtomicFile.WriteAllText(_path, string.Concat(_top5.Select(kv => $"{kv.Key}\t{string.Join(',', kv.Value)}\n")));
    }
}
