using System.Xml.Linq;

namespace EdgeResNet.Tests;

/// <summary>
/// The dependency rule (docs/architecture.md), read from the project files: the runtime depends on
/// no project; common (shared by both sides) only on the runtime and common; the tools never on
/// firmware and firmware never on the tools. The tests may use everything.
/// </summary>
[TestClass]
public sealed class DependencyRuleTests
{
    /// <summary>For each top folder, the top folders its projects may reference.</summary>
    static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["runtime"] = [],
        ["common"] = ["runtime", "common"],
        ["tools"] = ["runtime", "common", "tools"],
        ["firmware"] = ["runtime", "common", "firmware"],
        ["tests"] = ["runtime", "common", "tools", "firmware", "tests"],
    };

    /// <summary>Every project reference that breaks the rule, as "from -> to", plus projects outside the known folders.</summary>
    internal static List<string> Violations(string root)
    {
        var found = new List<string>();
        foreach (var project in Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories))
        {
            string from = Path.GetRelativePath(root, project).Replace('\\', '/');
            if (from.Split('/').Any(p => p is "bin" or "obj" || p.StartsWith('.'))) continue;
            string fromTop = from.Split('/')[0];
            if (!Allowed.TryGetValue(fromTop, out var allowed)) { found.Add($"{from}: not in one of {string.Join(", ", Allowed.Keys)}"); continue; }
            foreach (var reference in XDocument.Load(project).Descendants("ProjectReference"))
            {
                string target = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(project)!, reference.Attribute("Include")!.Value.Replace('\\', '/')));
                string to = Path.GetRelativePath(root, target).Replace('\\', '/');
                if (!allowed.Contains(to.Split('/')[0])) found.Add($"{from} -> {to}");
            }
        }
        return found;
    }

    [TestMethod]
    public void ProjectReferencesFollowTheDependencyRule()
    {
        string root = EdgeResNet.Tools.RepoPaths.FindRoot() ?? throw new AssertFailedException("the repository root (EdgeResNet.sln) was not found");
        var violations = Violations(root);
        Assert.IsEmpty(violations, "forbidden project references:\n" + string.Join("\n", violations));
        Assert.IsGreaterThanOrEqualTo(7, Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories).Count(p => !p.Contains("/obj/")), "the rule must have read the real projects");
    }

    [TestMethod]
    public void AForbiddenReferenceIsCaught()
    {
        string root = Path.Combine(Path.GetTempPath(), "deprule-" + Guid.NewGuid().ToString("N"));
        try
        {
            void Project(string path, params string[] refs)
            {
                Directory.CreateDirectory(Path.Combine(root, Path.GetDirectoryName(path)!));
                File.WriteAllText(Path.Combine(root, path), new XElement("Project",
                    new XElement("ItemGroup", refs.Select(r => new XElement("ProjectReference", new XAttribute("Include", r))))).ToString());
            }
            Project("runtime/R/R.csproj");
            Project("common/C/C.csproj", "../../runtime/R/R.csproj");
            Project("firmware/F/F.csproj", "../../common/C/C.csproj");
            Project("tools/T/T.csproj", "../../common/C/C.csproj", "../../firmware/F/F.csproj");
            Project("runtime/R2/R2.csproj", "../../common/C/C.csproj");
            CollectionAssert.AreEquivalent(new[] { "tools/T/T.csproj -> firmware/F/F.csproj", "runtime/R2/R2.csproj -> common/C/C.csproj" }, Violations(root));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
