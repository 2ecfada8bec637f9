using System.CommandLine;
using EdgeResNet.Common;
using EdgeResNet.Common.Signing;
using EdgeResNet.Tools;

namespace EdgeResNet.Cli;

/// <summary>Signing keys and signed images (docs/flash-format.md §8): what lets a board refuse images from anyone else.</summary>
static class SigningCommands
{
    public static IEnumerable<Command> All() => [Keys(), Sign()];

    static Command Keys()
    {
        var output = new Option<string>("--out") { Description = "The private key file to write (mode 0600); the public key goes to the same name + .pub. Neither is ever overwritten", Required = true };
        var create = new Command("new", "Make an ECDSA P-256 signing key: KEY (private, keep it off the boards) and KEY.pub (give it to the boards with --trust)") { output };
        create.SetAction(pr => ExitCodes.Guard(() =>
        {
            string path = pr.GetValue(output)!;
            CommandSupport.CheckOutputs(path, path + ".pub");
            using var key = SigningKey.Create();
            key.Save(path);
            Console.WriteLine($"wrote {path} (private key, mode 0600: keep it secret and backed up) and {path}.pub (public key)");
            Console.WriteLine($"key id {key.KeyIdHex}; a board trusts it with: edgeresnet-device run|loader ... --trust {path}.pub");
            Console.Write(key.PublicKeyPem);
            Console.WriteLine();
            return ExitCodes.Ok;
        }));
        return new Command("keys", "Signing keys for flash images") { create };
    }

    static Command Sign()
    {
        var image = new Argument<string>("image") { Description = "A flash image (.img), signed or not: a signature block is appended or replaced" };
        var key = new Option<string>("--key") { Description = "The private key file (`edgeresnet keys new`)", Required = true };
        var counter = new Option<uint>("--counter")
        {
            Description = "Security counter (anti-rollback): a board refuses an image whose counter is below the one it boots. Raise it for an update that must not be undone",
            Required = true,
        };
        var output = new Option<string?>("--out") { Description = "Write the signed image here (default: replace IMAGE, atomically)" };
        var cmd = new Command("sign", "Append an ECDSA P-256 signature over SHA-256 of the image, with a security counter; boards given the public key (--trust) boot only such images")
        {
            image, key, counter, output,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            string input = pr.GetValue(image)!, target = pr.GetValue(output) ?? input;
            CommandSupport.CheckOutputs(target);
            if (!File.Exists(input)) throw new FileNotFoundException($"flash image not found: {input}");
            using var signing = SigningKey.Load(pr.GetValue(key)!);
            var signed = ImageSigning.Sign(File.ReadAllBytes(input), signing, pr.GetValue(counter));
            AtomicFile.WriteAllBytes(target, signed);
            Console.WriteLine($"signed {target}: {signed.Length - SignatureBlock.Size:N0}-byte image + {SignatureBlock.Size}-byte signature block, key {signing.KeyIdHex}, security counter {pr.GetValue(counter)}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
