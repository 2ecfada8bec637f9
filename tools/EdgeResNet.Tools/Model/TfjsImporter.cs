using System.Buffers.Binary;
using System.Text.Json;

namespace EdgeResNet.Tools.Model;

/// <summary>
/// Imports a TensorFlow.js layers model (model.json: Keras topology + weights manifest, plus its
/// binary shards) into a <see cref="Network"/>. Only what a Keras CNN classifier needs is
/// supported; anything else is an error naming the layer.
/// </summary>
public static class TfjsImporter
{
    const string Supported = "InputLayer, ZeroPadding2D, Conv2D, BatchNormalization, Activation(relu), Add, MaxPooling2D, GlobalAveragePooling2D, Flatten, Dense";

    public static Network Load(string modelJsonPath)
    {
        if (!File.Exists(modelJsonPath))
            throw new FileNotFoundException($"model file not found: {modelJsonPath}", modelJsonPath);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(modelJsonPath)); }
        catch (JsonException e) { throw new ModelFormatException($"{modelJsonPath}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("modelTopology", out var topology))
                throw new ModelFormatException($"{modelJsonPath}: no 'modelTopology'; is this a TF.js layers model?");
            if (root.TryGetProperty("format", out var format) && format.GetString() != "layers-model")
                throw new ModelFormatException($"{modelJsonPath}: format '{format.GetString()}' is not supported; expected 'layers-model'");
            var weights = ReadWeights(root, Path.GetDirectoryName(Path.GetFullPath(modelJsonPath))!);
            var config = topology.TryGetProperty("model_config", out var mc) ? mc : topology;
            return BuildNetwork(Prop(Prop(config, "config", "model"), "layers", "model"), weights);
        }
    }

    /// <summary>Reads every weight of the manifest: each group's shards are one little-endian float32 stream.</summary>
    static Dictionary<string, float[]> ReadWeights(JsonElement root, string dir)
    {
        var result = new Dictionary<string, float[]>();
        foreach (var group in Prop(root, "weightsManifest", "model").EnumerateArray())
        {
            var paths = Prop(group, "paths", "weights group").EnumerateArray().Select(p => p.GetString()!).ToList();
            var specs = Prop(group, "weights", "weights group").EnumerateArray().ToList();
            long expected = 0;
            foreach (var s in specs)
            {
                string name = Prop(s, "name", "weight").GetString()!;
                string dtype = s.TryGetProperty("dtype", out var dt) ? dt.GetString()! : "float32";
                if (dtype != "float32" || s.TryGetProperty("quantization", out _))
                    throw new ModelFormatException($"weight '{name}': dtype '{dtype}' or quantized weights are not supported; expected float32");
                expected += 4 * ShapeProduct(s);
            }
            long actual = 0;
            foreach (var p in paths)
            {
                string file = Path.Combine(dir, p);
                if (!File.Exists(file)) throw new FileNotFoundException($"weights shard not found: {file}", file);
                actual += new FileInfo(file).Length;
            }
            if (actual != expected)
                throw new ModelFormatException($"weights shards {string.Join(", ", paths)}: {actual} bytes on disk but the manifest needs {expected}; the download is incomplete or corrupt (run 'edgeresnet fetch-weights' again)");

            using var stream = new ConcatenatedFiles(paths.Select(p => Path.Combine(dir, p)));
            foreach (var s in specs)
            {
                var values = new float[ShapeProduct(s)];
                var bytes = new byte[values.Length * 4];
                stream.ReadExactly(bytes);
                for (int i = 0; i < values.Length; i++)
                    values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(4 * i));
                result[s.GetProperty("name").GetString()!] = values;
            }
        }
        return result;
    }

    static long ShapeProduct(JsonElement spec) =>
        Prop(spec, "shape", "weight").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());

    static Network BuildNetwork(JsonElement layersJson, Dictionary<string, float[]> weights)
    {
        var layers = new List<Layer>();
        var shapes = new Dictionary<string, Shape3>();
        var aliases = new Dictionary<string, string>(); // Flatten of a 1x1xC tensor is the identity
        foreach (var lj in layersJson.EnumerateArray())
        {
            string cls = Prop(lj, "class_name", "layer").GetString()!;
            var cfg = Prop(lj, "config", "layer");
            string name = lj.TryGetProperty("name", out var n) ? n.GetString()! : Prop(cfg, "name", "layer").GetString()!;
            string[] inputs = InboundNames(lj).Select(i => aliases.GetValueOrDefault(i, i)).ToArray();
            foreach (var i in inputs)
                if (!shapes.ContainsKey(i)) throw new ModelFormatException($"layer '{name}': input '{i}' is not defined before it");
            Shape3 In(int k = 0) => shapes[inputs[k]];
            void Need(int count)
            {
                if (inputs.Length != count) throw new ModelFormatException($"layer '{name}' ({cls}): expected {count} input(s), found {inputs.Length}");
            }
            float[] W(string suffix, long count)
            {
                if (!weights.TryGetValue($"{name}/{suffix}", out var w))
                    throw new ModelFormatException($"layer '{name}': weight '{name}/{suffix}' is missing from the weights manifest");
                if (w.Length != count)
                    throw new ModelFormatException($"layer '{name}': weight '{name}/{suffix}' has {w.Length} values, the layer needs {count}");
                return w;
            }

            Layer layer;
            switch (cls)
            {
                case "InputLayer":
                {
                    Need(0);
                    var s = Prop(cfg, "batch_input_shape", name).EnumerateArray().Skip(1).Select(d => d.GetInt32()).ToArray();
                    if (s.Length != 3) throw new ModelFormatException($"layer '{name}': input shape must be [batch, height, width, channels]");
                    layer = new Layer { Name = name, Kind = LayerKind.Input, Inputs = [], OutShape = new(s[0], s[1], s[2]) };
                    break;
                }
                case "ZeroPadding2D":
                {
                    Need(1);
                    var (t, b, l, r) = ReadPadding(Prop(cfg, "padding", name), name);
                    layer = new Layer
                    {
                        Name = name, Kind = LayerKind.ZeroPad, Inputs = inputs,
                        OutShape = new(In().H + t + b, In().W + l + r, In().C),
                        PadTop = t, PadBottom = b, PadLeft = l, PadRight = r,
                    };
                    break;
                }
                case "Conv2D":
                {
                    Need(1);
                    CheckChannelsLast(cfg, name);
                    if (cfg.TryGetProperty("dilation_rate", out var dil) && dil.EnumerateArray().Any(d => d.GetInt32() != 1))
                        throw new ModelFormatException($"layer '{name}': dilated convolution is not supported");
                    string act = cfg.TryGetProperty("activation", out var a) ? a.GetString()! : "linear";
                    if (act != "linear") throw new ModelFormatException($"layer '{name}': Conv2D activation '{act}' is not supported; use a separate Activation layer");
                    var k = Pair(cfg, "kernel_size", name);
                    var st = Pair(cfg, "strides", name);
                    int filters = Prop(cfg, "filters", name).GetInt32();
                    var geo = Geometry(In(), k, st, Prop(cfg, "padding", name).GetString()!, name);
                    bool useBias = !cfg.TryGetProperty("use_bias", out var ub) || ub.GetBoolean();
                    layer = new Layer
                    {
                        Name = name, Kind = LayerKind.Conv2D, Inputs = inputs,
                        OutShape = new(geo.OutH, geo.OutW, filters),
                        KernelH = k.Item1, KernelW = k.Item2, StrideH = st.Item1, StrideW = st.Item2,
                        PadTop = geo.Top, PadBottom = geo.Bottom, PadLeft = geo.Left, PadRight = geo.Right,
                        Kernel = W("kernel", (long)k.Item1 * k.Item2 * In().C * filters),
                        Bias = useBias ? W("bias", filters) : new float[filters],
                    };
                    break;
                }
                case "BatchNormalization":
                {
                    Need(1);
                    var axis = Prop(cfg, "axis", name);
                    int ax = axis.ValueKind == JsonValueKind.Array ? axis[0].GetInt32() : axis.GetInt32();
                    if (ax != 3 && ax != -1) throw new ModelFormatException($"layer '{name}': BatchNormalization over axis {ax} is not supported; expected the channel axis (3)");
                    int c = In().C;
                    bool center = !cfg.TryGetProperty("center", out var ce) || ce.GetBoolean();
                    bool scale = !cfg.TryGetProperty("scale", out var sc) || sc.GetBoolean();
                    layer = new Layer
                    {
                        Name = name, Kind = LayerKind.BatchNorm, Inputs = inputs, OutShape = In(),
                        Gamma = scale ? W("gamma", c) : Enumerable.Repeat(1f, c).ToArray(),
                        Beta = center ? W("beta", c) : new float[c],
                        Mean = W("moving_mean", c),
                        Variance = W("moving_variance", c),
                        Epsilon = cfg.TryGetProperty("epsilon", out var eps) ? eps.GetSingle() : 1e-3f,
                    };
                    break;
                }
                case "Activation":
                {
                    Need(1);
                    string act = Prop(cfg, "activation", name).GetString()!;
                    if (act != "relu") throw new ModelFormatException($"layer '{name}': activation '{act}' is not supported; only relu");
                    layer = new Layer { Name = name, Kind = LayerKind.Relu, Inputs = inputs, OutShape = In() };
                    break;
                }
                case "Add":
                {
                    if (inputs.Length < 2) throw new ModelFormatException($"layer '{name}' (Add): needs at least 2 inputs, found {inputs.Length}");
                    foreach (var i in inputs)
                        if (shapes[i] != In()) throw new ModelFormatException($"layer '{name}' (Add): input '{i}' is {shapes[i]} but '{inputs[0]}' is {In()}");
                    layer = new Layer { Name = name, Kind = LayerKind.Add, Inputs = inputs, OutShape = In() };
                    break;
                }
                case "MaxPooling2D":
                {
                    Need(1);
                    CheckChannelsLast(cfg, name);
                    var k = Pair(cfg, "pool_size", name);
                    var st = cfg.TryGetProperty("strides", out var s) && s.ValueKind != JsonValueKind.Null ? Pair(cfg, "strides", name) : k;
                    var geo = Geometry(In(), k, st, Prop(cfg, "padding", name).GetString()!, name);
                    layer = new Layer
                    {
                        Name = name, Kind = LayerKind.MaxPool, Inputs = inputs, OutShape = new(geo.OutH, geo.OutW, In().C),
                        KernelH = k.Item1, KernelW = k.Item2, StrideH = st.Item1, StrideW = st.Item2,
                        PadTop = geo.Top, PadBottom = geo.Bottom, PadLeft = geo.Left, PadRight = geo.Right,
                    };
                    break;
                }
                case "GlobalAveragePooling2D":
                    Need(1);
                    CheckChannelsLast(cfg, name);
                    layer = new Layer { Name = name, Kind = LayerKind.GlobalAvgPool, Inputs = inputs, OutShape = new(1, 1, In().C) };
                    break;
                case "Flatten":
                    Need(1);
                    if (In().H != 1 || In().W != 1)
                        throw new ModelFormatException($"layer '{name}': Flatten of a {In()} tensor is not supported; only after global pooling (1x1xC)");
                    aliases[name] = inputs[0];
                    continue;
                case "Dense":
                {
                    Need(1);
                    if (In().H != 1 || In().W != 1) throw new ModelFormatException($"layer '{name}': Dense needs a 1x1xC input, found {In()}");
                    string act = cfg.TryGetProperty("activation", out var a) ? a.GetString()! : "linear";
                    if (act != "linear" && act != "softmax") throw new ModelFormatException($"layer '{name}': Dense activation '{act}' is not supported; expected softmax or linear");
                    int units = Prop(cfg, "units", name).GetInt32();
                    bool useBias = !cfg.TryGetProperty("use_bias", out var ub) || ub.GetBoolean();
                    layer = new Layer
                    {
                        Name = name, Kind = LayerKind.Dense, Inputs = inputs, OutShape = new(1, 1, units),
                        Kernel = W("kernel", (long)In().C * units),
                        Bias = useBias ? W("bias", units) : new float[units],
                        Softmax = act == "softmax",
                    };
                    break;
                }
                default:
                    throw new ModelFormatException($"layer '{name}': layer type '{cls}' is not supported (supported: {Supported})");
            }
            if (shapes.ContainsKey(name)) throw new ModelFormatException($"layer '{name}' is defined twice");
            shapes[name] = layer.OutShape;
            layers.Add(layer);
        }
        if (layers.Count == 0 || layers[0].Kind != LayerKind.Input) throw new ModelFormatException("the model has no InputLayer first");
        if (layers[^1].Kind != LayerKind.Dense) throw new ModelFormatException($"the last layer '{layers[^1].Name}' is not Dense; a classifier must end in Dense");
        return new Network(layers);
    }

    static IEnumerable<string> InboundNames(JsonElement layer)
    {
        if (!layer.TryGetProperty("inbound_nodes", out var nodes) || nodes.GetArrayLength() == 0) yield break;
        if (nodes.GetArrayLength() > 1) throw new ModelFormatException($"layer '{layer.GetProperty("name").GetString()}': shared layers (called more than once) are not supported");
        foreach (var inbound in nodes[0].EnumerateArray()) yield return inbound[0].GetString()!;
    }

    /// <summary>Output size and explicit padding for Keras "valid" / "same" (TensorFlow's rule: extra padding goes bottom/right).</summary>
    static (int OutH, int OutW, int Top, int Bottom, int Left, int Right) Geometry(Shape3 input, (int, int) k, (int, int) s, string padding, string name)
    {
        switch (padding)
        {
            case "valid":
                int oh = (input.H - k.Item1) / s.Item1 + 1, ow = (input.W - k.Item2) / s.Item2 + 1;
                if (input.H < k.Item1 || input.W < k.Item2) throw new ModelFormatException($"layer '{name}': kernel {k.Item1}x{k.Item2} is larger than its {input} input");
                return (oh, ow, 0, 0, 0, 0);
            case "same":
                int outH = (input.H + s.Item1 - 1) / s.Item1, outW = (input.W + s.Item2 - 1) / s.Item2;
                int ph = Math.Max((outH - 1) * s.Item1 + k.Item1 - input.H, 0), pw = Math.Max((outW - 1) * s.Item2 + k.Item2 - input.W, 0);
                return (outH, outW, ph / 2, ph - ph / 2, pw / 2, pw - pw / 2);
            default:
                throw new ModelFormatException($"layer '{name}': padding '{padding}' is not supported; expected 'valid' or 'same'");
        }
    }

    static (int Top, int Bottom, int Left, int Right) ReadPadding(JsonElement p, string name)
    {
        if (p.ValueKind == JsonValueKind.Number) { int v = p.GetInt32(); return (v, v, v, v); }
        var a = p.EnumerateArray().ToArray();
        if (a.Length == 2 && a[0].ValueKind == JsonValueKind.Number) return (a[0].GetInt32(), a[0].GetInt32(), a[1].GetInt32(), a[1].GetInt32());
        if (a.Length == 2 && a[0].ValueKind == JsonValueKind.Array)
            return (a[0][0].GetInt32(), a[0][1].GetInt32(), a[1][0].GetInt32(), a[1][1].GetInt32());
        throw new ModelFormatException($"layer '{name}': cannot read padding {p}");
    }

    static (int, int) Pair(JsonElement cfg, string key, string name)
    {
        var v = Prop(cfg, key, name);
        if (v.ValueKind == JsonValueKind.Number) return (v.GetInt32(), v.GetInt32());
        if (v.GetArrayLength() != 2) throw new ModelFormatException($"layer '{name}': '{key}' must have two values");
        return (v[0].GetInt32(), v[1].GetInt32());
    }

    static void CheckChannelsLast(JsonElement cfg, string name)
    {
        if (cfg.TryGetProperty("data_format", out var f) && f.GetString() != "channels_last")
            throw new ModelFormatException($"layer '{name}': data_format '{f.GetString()}' is not supported; expected channels_last");
    }

    static JsonElement Prop(JsonElement e, string key, string where)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v))
            throw new ModelFormatException($"{where}: missing '{key}' in model.json");
        return v;
    }

    /// <summary>Reads a list of files as one stream (TF.js splits a weight group across shards).</summary>
    sealed class ConcatenatedFiles(IEnumerable<string> paths) : IDisposable
    {
        readonly Queue<string> _pending = new(paths);
        FileStream? _current;

        public void ReadExactly(Span<byte> buffer)
        {
            while (buffer.Length > 0)
            {
                if (_current == null)
                {
                    if (_pending.Count == 0) throw new ModelFormatException("weights shards ended before the manifest's last weight");
                    _current = File.OpenRead(_pending.Dequeue());
                }
                int n = _current.Read(buffer);
                if (n == 0) { _current.Dispose(); _current = null; continue; }
                buffer = buffer[n..];
            }
        }

        public void Dispose() => _current?.Dispose();
    }
}
