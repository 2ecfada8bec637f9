using System.Text.Json;

namespace EdgeResNet.Common;

/// <summary>Class names by index, from the weights package's assets/labels.json ({"0": "tench", ...}): the tools and the board app read it here.</summary>
public static class ClassLabels
{
    public static string[] Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"labels file not found: {path} (it is assets/labels.json of the weights package)", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var entries = doc.RootElement.EnumerateObject().ToList();
            var names = new string[entries.Count];
            foreach (var e in entries)
            {
                if (!int.TryParse(e.Name, out int i) || i < 0 || i >= names.Length || e.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{path}: entry '{e.Name}' is not class index 0..{names.Length - 1} with a name; expected the weights package's assets/labels.json ({{\"0\": \"tench\", ...}})");
                names[i] = e.Value.GetString()!;
            }
            return names;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: not the weights package's assets/labels.json ({{\"0\": \"tench\", ...}}): {e.Message}");
        }
    }
}
