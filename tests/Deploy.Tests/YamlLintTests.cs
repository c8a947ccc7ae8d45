namespace LlmServer.Deploy.Tests;

/// <summary>yamllint (the repository's .yamllint) over docker-compose.yml and every YAML file under deploy/.</summary>
public sealed class YamlLintTests
{
    [Fact]
    public void Every_deployment_yaml_file_passes_yamllint()
    {
        IReadOnlyList<string> files = RepositoryFiles.YamlFiles();
        Assert.Contains(Path.Combine("deploy", "k8s", "deployment.yaml"), files);

        ProcessResult result = LintTools.Instance.YamlLint(["--strict", "--format", "parsable", "-c", ".yamllint", .. files]);

        Assert.True(result.ExitCode == 0, $"yamllint found problems:\n{result.Output}");
    }
}
