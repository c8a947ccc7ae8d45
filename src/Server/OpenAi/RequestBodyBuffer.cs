using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace LlmServer.OpenAi;

/// <summary>
/// A request body read whole into 64 KiB chunks, to be parsed where it lies as one
/// <see cref="ReadOnlySequence{T}"/>, under the server's body size limit; disposing gives the chunks back.
/// </summary>
/// <remarks>
/// Why not <c>JsonSerializer.DeserializeAsync(request.Body)</c>: it reads into a buffer rented from
/// <c>ArrayPool.Shared</c> and doubles it until the largest JSON token fits, so a 20 MB prompt
/// rented 32 MB (and every power of two below), and the shared pool keeps what it is given: one array
/// per size per thread, and more per core, trimmed only by gen-2 collections that an idle server
/// never has (docs/benchmarks.md shows how much of the heap such arrays held). Chunks of 64 KiB
/// stay below the large-object threshold (85,000 bytes), so what the pool keeps of them is small,
/// and the rest is ordinary short-lived garbage.
/// </remarks>
public sealed class RequestBodyBuffer : IDisposable
{
    private const int ChunkSize = 64 * 1024;

    private readonly List<byte[]> _chunks = [];
    private int _lastChunkLength;

    private RequestBodyBuffer()
    {
    }

    public long Length => _chunks.Count == 0 ? 0 : (long)(_chunks.Count - 1) * ChunkSize + _lastChunkLength;

    /// <summary>
    /// Reads the request's body to its end, refusing one over <paramref name="limit"/> bytes with a 413
    /// (<see cref="ApiException.RequestTooLarge"/>) that the client gets to read.
    /// </summary>
    /// <remarks>
    /// Kestrel, at its own limit, answers and closes the connection with the rest of the body unread;
    /// a client still sending (HttpClient, httpx: anything that does not wait for 100-continue) then
    /// gets a reset instead of the 413. So Kestrel's limit is raised for this request to
    /// <see cref="DrainLimit"/>, and past <paramref name="limit"/> the body is read on into one scratch
    /// chunk and dropped, as nginx's lingering close does; the 413 then goes out on a connection that
    /// is still in step. A body past the drain limit, or a Content-Length past it, is refused at once.
    /// </remarks>
    public static async Task<RequestBodyBuffer> ReadAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        long drainLimit = DrainLimit(limit);
        if (request.ContentLength > drainLimit)
        {
            throw ApiException.RequestTooLarge(limit);
        }
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } kestrelLimit)
        {
            kestrelLimit.MaxRequestBodySize = drainLimit;
        }

        Stream body = request.Body;
        var buffer = new RequestBodyBuffer();
        try
        {
            long total = 0;
            while (true)
            {
                byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
                buffer._chunks.Add(chunk);
                int filled = 0;
                while (filled < ChunkSize)
                {
                    int read = await body.ReadAsync(chunk.AsMemory(filled, ChunkSize - filled), cancellationToken);
                    if (read == 0)
                    {
                        buffer._lastChunkLength = filled;
                        return buffer;
                    }
                    filled += read;
                    total += read;
                    if (total > limit)
                    {
                        await DrainAsync(body, chunk, limit, cancellationToken);
                    }
                }
            }
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>How much of an over-limit body is read and dropped so that its 413 reaches the client.</summary>
    public static long DrainLimit(long limit) => Math.Max(4 * limit, 32L << 20);

    private static async Task DrainAsync(Stream body, byte[] scratch, long limit, CancellationToken cancellationToken)
    {
        try
        {
            while (await body.ReadAsync(scratch, cancellationToken) > 0)
            {
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Past the drain limit too: Kestrel closes the connection after the answer.
        }
        throw ApiException.RequestTooLarge(limit);
    }

    /// <summary>The bytes read, valid until this buffer is disposed.</summary>
    public ReadOnlySequence<byte> GetSequence()
    {
        int count = _chunks.Count;
        if (count > 1 && _lastChunkLength == 0)
        {
            count--;
        }
        if (count == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }
        int LengthOf(int index) => index == _chunks.Count - 1 ? _lastChunkLength : ChunkSize;
        if (count == 1)
        {
            return new ReadOnlySequence<byte>(_chunks[0], 0, LengthOf(0));
        }

        var first = new Segment(_chunks[0].AsMemory(0, LengthOf(0)), 0);
        Segment last = first;
        for (int i = 1; i < count; i++)
        {
            last = last.Append(_chunks[i].AsMemory(0, LengthOf(i)));
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    public void Dispose()
    {
        foreach (byte[] chunk in _chunks)
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        _chunks.Clear();
        _lastChunkLength = 0;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
