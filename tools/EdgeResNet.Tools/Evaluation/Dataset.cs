
namespace EdgeResNet.Tools.Evaluation;

public sealed record LabeledImage(string Path, string FileName, int ClassIndex, string Synset);

public enum Split { All, Calibration, Evaluation }

/// <summary>
/// A folder of photos with labels.tsv (filename TAB class_index TAB synset; '#' starts a comment).
/// The project's convention: class_index % 10 == 0 is calibration data, the rest evaluation.
/// </summary>
public static class Dataset
{
    /// <summary>Class indices a labels.tsv may name (ImageNet's 1000 classes).</summary>
    public const int Classes = 1000;

    public static IReadOnlyList<LabeledImage> Load(string dir, Split split = Split.All, int? limit = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"image folder not found: {dir}");
        string tsv = Path.Combine(dir, "labels.tsv");
        if (!File.Exists(tsv))
            throw new FileNotFoundException($"{dir} has no labels.tsv (one line per image: filename<TAB>class_index<TAB>synset)", tsv);
        var images = new List<LabeledImage>();
        var seen = new Dictionary<string, int>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(tsv))
        {
            lineNo++;
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var f = line.Split('\t');
            if (f.Length < 2 || !int.TryParse(f[1], out int cls))
                throw new FormatException($"{tsv}:{lineNo}: expected filename<TAB>class_index<TAB>synset, got '{line}'");
            string name = f[0];
            if (cls < 0 || cls >= Classes) throw new FormatException($"{tsv}:{lineNo}: class index {cls} is outside 0..{Classes - 1}");
            if (name.Length == 0 || Path.IsPathRooted(name) || name.Split('/', '\\').Any(p => p is "" or "." or ".."))
                throw new FormatException($"{tsv}:{lineNo}: '{name}' is not a file name inside {dir} (no absolute paths, no '..')");
            if (seen.TryGetValue(name, out int first)) throw new FormatException($"{tsv}:{lineNo}: '{name}' is listed again (first on line {first})");
            seen[name] = lineNo;
            images.Add(new LabeledImage(Path.Combine(dir, name), name, cls, f.Length > 2 ? f[2] : ""));
        }
        IEnumerable<LabeledImage> selected = split switch
        {
            Split.Calibration => images.Where(i => i.ClassIndex % 10 == 0),
            Split.Evaluation => images.Where(i => i.ClassIndex % 10 != 0),
            _ => images,
        };
        if (limit is int n) selected = selected.Take(n);
        return selected.ToList();
    }
}
