
namespace EdgeResNet.Tools.Evaluation;

public sealed record LabeledImage(string Path, string FileName, int ClassIndex, string Synset);

public enum Split { All, Calibration, Evaluation }

/// <summary>
/// A folder of photos with labels.tsv (filename TAB class_index TAB synset; '#' starts a comment).
/// The project's convention: class_index % 10 == 0 is calibration data, the rest evaluation.
/// </summary>
public static class Dataset
{
    public static IReadOnlyList<LabeledImage> Load(string dir, Split split = Split.All, int? limit = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"image folder not found: {dir}");
        string tsv = Path.Combine(dir, "labels.tsv");
        if (!File.Exists(tsv))
            throw new FileNotFoundException($"{dir} has no labels.tsv (one line per image: filename<TAB>class_index<TAB>synset)", tsv);
        var images = new List<LabeledImage>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(tsv))
        {
            lineNo++;
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var f = line.Split('\t');
            if (f.Length < 2 || !int.TryParse(f[1], out int cls) || cls < 0)
                throw new FormatException($"{tsv}:{lineNo}: expected filename<TAB>class_index<TAB>synset, got '{line}'");
            images.Add(new LabeledImage(Path.Combine(dir, f[0]), f[0], cls, f.Length > 2 ? f[2] : ""));
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
