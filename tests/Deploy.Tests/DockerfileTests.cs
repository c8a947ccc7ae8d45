using System.Text.RegularExpressions;

namespace LlmServer.Deploy.Tests;

/// <summary>The Dockerfile, by text: there is no Docker engine to build it here.</summary>
public sealed partial class DockerfileTests
{
    private static readonly string Dockerfile = RepositoryFiles.Read("Dockerfile");

    private static IReadOnlyList<string> Instructions(string keyword) =>
        [.. Dockerfile.Split('\n').Where(line => line.StartsWith(keyword + " ", StringComparison.Ordinal))];

    [Fact]
    public void One_file_builds_the_cuda_or_the_cpu_image_with_the_readmes_publish()
    {
        Assert.Contains("ARG BACKEND=cuda", Dockerfile);
        Assert.Contains("FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build", Dockerfile);
        Assert.Contains("dotnet publish src/Server -c Release -p:TorchSharpBackend=${BACKEND}", Dockerfile);
        Assert.Contains(Instructions("FROM"), line => line.StartsWith("FROM ${CUDA_IMAGE} AS runtime-cuda", StringComparison.Ordinal));
        Assert.Contains(Instructions("FROM"), line => line.StartsWith("FROM ${DOTNET_ASPNET_IMAGE} AS runtime-cpu", StringComparison.Ordinal));
        Assert.Matches(@"ARG CUDA_IMAGE=nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu24\.04", Dockerfile);
        Assert.Equal("FROM runtime-${BACKEND} AS final", Instructions("FROM").Last().Trim());
        // The CUDA base has no .NET: the runtime is copied in.
        Assert.Contains("COPY --from=dotnet-runtime /usr/share/dotnet /usr/share/dotnet", Dockerfile);
    }

    [Fact]
    public void The_restore_copies_each_projects_lock_file_and_the_cpu_image_restores_in_locked_mode()
    {
        // COPY src/X/X.csproj src/X/packages.lock.json src/X/: without the lock file the restore
        // would resolve a graph of its own, which CI never tested.
        var projectCopies = Instructions("COPY").Where(line => line.Contains(".csproj", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(projectCopies);
        foreach (string copy in projectCopies)
        {
            string project = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            string lockFile = Path.GetDirectoryName(project) + "/packages.lock.json";
            Assert.Contains($" {lockFile} ", copy);
            Assert.True(File.Exists(RepositoryFiles.PathOf(lockFile)), $"{lockFile} is copied but not in the repository");
        }
        Assert.Contains("""
            RUN if [ "${BACKEND}" = cpu ]; then locked=--locked-mode; fi \
                && dotnet restore src/Server -p:TorchSharpBackend=${BACKEND} ${locked:-}
            """, Dockerfile);
    }

    [Fact]
    public void The_image_runs_as_a_numeric_non_root_user()
    {
        string user = Assert.Single(Instructions("USER"))[5..].Trim();
        Assert.Matches(NumericUser(), user);
        Assert.DoesNotMatch(@"^0(:|$)", user);
    }

    [Fact]
    public void The_image_checks_health_exposes_8000_and_declares_its_volumes()
    {
        Assert.Contains("HEALTHCHECK", Dockerfile);
        Assert.Matches(@"CMD curl -fsS ""http://127\.0\.0\.1:\$\{LLMSERVER_Server__Port\}/health""", Dockerfile);
        Assert.Contains("curl", Dockerfile[..Dockerfile.IndexOf("HEALTHCHECK", StringComparison.Ordinal)]);
        Assert.Equal("EXPOSE 8000", Assert.Single(Instructions("EXPOSE")).Trim());
        Assert.Equal("VOLUME [\"/models\", \"/data\"]", Assert.Single(Instructions("VOLUME")).Trim());
        Assert.Equal("ENTRYPOINT [\"dotnet\", \"/app/llmserver.dll\", \"serve\"]", Assert.Single(Instructions("ENTRYPOINT")).Trim());
        foreach (string setting in new[] { "LLMSERVER_Server__Host=0.0.0.0", "LLMSERVER_Server__DataDir=/data", "LLMSERVER_Server__Model=/models/" })
        {
            Assert.Contains(setting, Dockerfile);
        }
    }

    [Fact]
    public void Dockerignore_keeps_build_outputs_and_data_out_of_the_context()
    {
        string[] ignored = RepositoryFiles.Read(".dockerignore").Split('\n', StringSplitOptions.TrimEntries);
        foreach (string entry in new[] { ".git", "**/bin/", "**/obj/", "llmserver-data/" })
        {
            Assert.Contains(entry, ignored);
        }
    }

    [GeneratedRegex(@"^[0-9]+(:[0-9]+)?$")]
    private static partial Regex NumericUser();
}
