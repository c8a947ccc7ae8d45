# syntax=docker/dockerfile:1
# One Dockerfile, two images:
#   docker build -t llmserver:cuda .                        (default: TorchSharp-cuda-linux, CUDA runtime base)
#   docker build -t llmserver:cpu --build-arg BACKEND=cpu .  (TorchSharp-cpu, ASP.NET Core runtime base)
# Configuration is by environment (LLMSERVER_Server__X, see docs/configuration.md); mount the model
# under /models and keep /data (files, fine-tuning jobs, checkpoints) on a volume. The image holds no
# model and fetches none: a Hugging Face directory as published (Llama 3.x, Qwen2/2.5, Qwen3, SmolLM2,
# Mistral, GPT-2) is mounted, and arguments after the image name are serve flags, e.g.
#   docker run --gpus all -p 8000:8000 -v "$PWD/models:/models:ro" llmserver:cuda --model /models/Qwen2.5-0.5B-Instruct

ARG BACKEND=cuda
# libtorch 2.10 as packaged for TorchSharp 0.107.0 is built for CUDA 12.8; the host needs an
# NVIDIA driver for CUDA 12.8 (>= 570) and the NVIDIA container toolkit.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG DOTNET_ASPNET_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG BACKEND
WORKDIR /src
# Restore first, from the project files and their lock files only, so that a source change
# does not download libtorch again.
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/ChatTemplates/ChatTemplates.csproj src/ChatTemplates/packages.lock.json src/ChatTemplates/
COPY src/Inference/Inference.csproj src/Inference/packages.lock.json src/Inference/
COPY src/Storage/Storage.csproj src/Storage/packages.lock.json src/Storage/
COPY src/Training/Training.csproj src/Training/packages.lock.json src/Training/
COPY src/Bench/Bench.csproj src/Bench/packages.lock.json src/Bench/
COPY src/Server/Server.csproj src/Server/packages.lock.json src/Server/
# The cpu image restores exactly the packages the committed lock files record, as CI does. The
# cuda image cannot: those files describe TorchSharp-cpu, and the machines that write them are
# not served TorchSharp-cuda-linux, so its restore resolves the pinned versions of
# Directory.Packages.props (NU1603 an error) and writes packages.cuda.lock.json in the image.
RUN if [ "${BACKEND}" = cpu ]; then locked=--locked-mode; fi \
    && dotnet restore src/Server -p:TorchSharpBackend=${BACKEND} ${locked:-}
COPY src/ src/
# The build in docs/operations.md ("GPU builds"), framework-dependent; both runtime images carry .NET 10.
RUN dotnet publish src/Server -c Release -p:TorchSharpBackend=${BACKEND} --no-restore -o /app

# .NET 10's images are Ubuntu 24.04, like the CUDA base, so the runtime copies over as it is.
FROM ${DOTNET_ASPNET_IMAGE} AS dotnet-runtime

FROM ${CUDA_IMAGE} AS runtime-cuda
COPY --from=dotnet-runtime /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LLMSERVER_Server__Device=cuda

FROM ${DOTNET_ASPNET_IMAGE} AS runtime-cpu
ENV LLMSERVER_Server__Device=cpu

FROM runtime-${BACKEND} AS final
# curl for HEALTHCHECK (the server has no health subcommand); a fixed non-root UID so that
# Kubernetes' runAsNonRoot can check it and volume ownership is predictable.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 llmserver \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin llmserver \
    && mkdir -p /models /data \
    && chown 10001:10001 /models /data
COPY --from=build --chown=0:0 /app /app
ENV LLMSERVER_Server__Host=0.0.0.0 \
    LLMSERVER_Server__Port=8000 \
    LLMSERVER_Server__Model=/models/model \
    LLMSERVER_Server__DataDir=/data \
    ASPNETCORE_HTTP_PORTS= \
    DOTNET_RUNNING_IN_CONTAINER=true \
    HOME=/data
VOLUME ["/models", "/data"]
EXPOSE 8000
USER 10001:10001
WORKDIR /data
# /health is 503 while the model loads; the start period covers loading a large checkpoint.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${LLMSERVER_Server__Port}/health" || exit 1
ENTRYPOINT ["dotnet", "/app/llmserver.dll", "serve"]
