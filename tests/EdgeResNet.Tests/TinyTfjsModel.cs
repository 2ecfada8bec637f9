using System.Text.Json.Nodes;

namespace EdgeResNet.Tests;

/// <summary>
/// Builds small TF.js layers models (model.json + binary shards) in a temporary folder, in the
/// format the converter writes for Keras models, so the importer is tested without the real weights.
/// </summary>
public sealed class TinyTfjsModel : IDisposable
{
    readonly JsonArray _layers = new();
    readonly List<(string Name, int[] Shape, float[] Values)> _weights = new();
    public string Dir { get; } = Directory.CreateTempSubdirectory("edgeresnet-tfjs-").FullName;
    public string ModelJson => Path.Combine(Dir, "model.json");

    public TinyTfjsModel Layer(string cls, string name, string[] inputs, JsonObject config)
    {
        config["name"] = name;
        var inbound = new JsonArray();
        foreach (var i in inputs) inbound.Add(new JsonArray(i, 0, 0, new JsonObject()));
        _layers.Add(new JsonObject
        {
            ["name"] = name, ["class_name"] = cls, ["config"] = config,
            ["inbound_nodes"] = inputs.Length == 0 ? new JsonArray() : new JsonArray(inbound),
        });
        return this;
    }

    public TinyTfjsModel Weight(string name, int[] shape, float[] values)
    {
        _weights.Add((name, shape, values));
        return this;
    }

    public TinyTfjsModel Input(string name, int h, int w, int c) =>
        Layer("InputLayer", name, [], new JsonObject { ["batch_input_shape"] = new JsonArray(null, h, w, c), ["dtype"] = "float32" });

    public TinyTfjsModel Conv(string name, string input, int cin, int filters, int k, int stride, string padding, Random rng, float[]? kernel = null, float[]? bias = null)
    {
        Layer("Conv2D", name, [input], new JsonObject
        {
            ["filters"] = filters, ["kernel_size"] = new JsonArray(k, k), ["strides"] = new JsonArray(stride, stride),
            ["padding"] = padding, ["data_format"] = "channels_last", ["dilation_rate"] = new JsonArray(1, 1),
            ["activation"] = "linear", ["use_bias"] = true,
        });
        Weight($"{name}/kernel", [k, k, cin, filters], kernel ?? Random(rng, k * k * cin * filters, 0.5f));
        return Weight($"{name}/bias", [filters], bias ?? Random(rng, filters, 0.1f));
    }

    public TinyTfjsModel BatchNorm(string name, string input, int c, Random rng)
    {
        Layer("BatchNormalization", name, [input], new JsonObject { ["axis"] = new JsonArray(3), ["epsilon"] = 0.001, ["center"] = true, ["scale"] = true });
        Weight($"{name}/gamma", [c], Random(rng, c, 0.5f).Select(v => v + 1f).ToArray());
        Weight($"{name}/beta", [c], Random(rng, c, 0.2f));
        Weight($"{name}/moving_mean", [c], Random(rng, c, 0.2f));
        return Weight($"{name}/moving_variance", [c], Random(rng, c, 0.2f).Select(v => v + 0.5f).ToArray());
    }

    public TinyTfjsModel Relu(string name, string input) => Layer("Activation", name, [input], new JsonObject { ["activation"] = "relu" });

    public TinyTfjsModel Dense(string name, string input, int cin, int units, Random rng, float[]? kernel = null, float[]? bias = null)
    {
        Layer("Dense", name, [input], new JsonObject { ["units"] = units, ["activation"] = "softmax", ["use_bias"] = true });
        Weight($"{name}/kernel", [cin, units], kernel ?? Random(rng, cin * units, 0.5f));
        return Weight($"{name}/bias", [units], bias ?? Random(rng, units, 0.1f));
    }

    /// <summary>A small ResNet-like network touching every supported layer type.</summary>
    public static TinyTfjsModel Residual(int seed = 1)
    {
        var rng = new Random(seed);
        var m = new TinyTfjsModel().Input("input_1", 9, 9, 3)
            .Layer("ZeroPadding2D", "pad", ["input_1"], new JsonObject { ["padding"] = new JsonArray(new JsonArray(1, 1), new JsonArray(1, 1)) })
            .Conv("conv_a", "pad", 3, 4, 3, 2, "valid", rng).BatchNorm("bn_a", "conv_a", 4, rng).Relu("relu_a", "bn_a")
            .Conv("conv_b", "relu_a", 4, 4, 3, 1, "same", rng).BatchNorm("bn_b", "conv_b", 4, rng)
            .Conv("conv_c", "relu_a", 4, 4, 1, 1, "valid", rng)
            .Layer("Add", "add", ["bn_b", "conv_c"], new JsonObject())
            .Relu("relu_b", "add")
            .Layer("MaxPooling2D", "pool", ["relu_b"], new JsonObject { ["pool_size"] = new JsonArray(3, 3), ["strides"] = new JsonArray(2, 2), ["padding"] = "same" })
            .Layer("GlobalAveragePooling2D", "gap", ["pool"], new JsonObject())
            .Dense("fc", "gap", 4, 5, rng);
        return m.Write();
    }

    static float[] Random(Random rng, int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();

    /// <summary>Writes model.json and the weights as two shards (the split falls inside a weight, as the converter does).</summary>
    public TinyTfjsModel Write()
    {
        var bytes = _weights.SelectMany(w => w.Values.SelectMany(BitConverter.GetBytes)).ToArray();
        int split = bytes.Length / 2;
        File.WriteAllBytes(Path.Combine(Dir, "group1-shard1of2.bin"), bytes[..split]);
        File.WriteAllBytes(Path.Combine(Dir, "group1-shard2of2.bin"), bytes[split..]);
        var specs = new JsonArray();
        foreach (var (name, shape, _) in _weights)
            specs.Add(new JsonObject { ["name"] = name, ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()), ["dtype"] = "float32" });
        var root = new JsonObject
        {
            ["format"] = "layers-model",
            ["modelTopology"] = new JsonObject
            {
                ["model_config"] = new JsonObject
                {
                    ["class_name"] = "Model",
                    ["config"] = new JsonObject { ["name"] = "tiny", ["layers"] = _layers },
                },
            },
            ["weightsManifest"] = new JsonArray(new JsonObject
            {
                ["paths"] = new JsonArray("group1-shard1of2.bin", "group1-shard2of2.bin"),
                ["weights"] = specs,
            }),
        };
        File.WriteAllText(ModelJson, root.ToJsonString());
        return this;
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}
