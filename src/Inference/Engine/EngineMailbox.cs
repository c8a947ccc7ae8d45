using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The engine thread's inbox: any thread posts, the engine thread takes commands between steps and
/// sleeps here when it has nothing to do. Once closed, whatever is left or still arrives is refused
/// on the posting thread, so no caller waits on a loop that has gone.
/// </summary>
internal sealed class EngineMailbox
{
    private readonly ConcurrentQueue<EngineCommand> _commands = new();
    private readonly AutoResetEvent _wake = new(false);
    private volatile bool _closed;

    public void Post(EngineCommand command)
    {
        _commands.Enqueue(command);
        _wake.Set();
        if (_closed)
        {
            RefuseAll();
        }
    }

    /// <summary>Wakes an idle engine to look again (a background run was cancelled, a stop was asked for).</summary>
    public void Wake() => _wake.Set();

    public void WaitForWork() => _wake.WaitOne();

    public bool TryTake([NotNullWhen(true)] out EngineCommand? command) => _commands.TryDequeue(out command);

    /// <summary>Refuses everything still queued and everything posted from now on.</summary>
    public void Close()
    {
        _closed = true;
        RefuseAll();
    }

    private void RefuseAll()
    {
        while (_commands.TryDequeue(out EngineCommand? command))
        {
            command.Refuse();
        }
    }
}
