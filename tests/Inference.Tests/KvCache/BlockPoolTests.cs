using LlmServer.Inference.KvCache;

namespace LlmServer.Inference.Tests.KvCache;

public class BlockPoolTests
{
    [Fact]
    public void Block_pool_refuses_double_release()
    {
        var pool = new BlockPool(2);
        var taken = new List<int>();
        Assert.True(pool.TryAllocate(2, taken));
        Assert.False(pool.TryAllocate(1, taken));
        pool.Release(taken);
        Assert.Equal(2, pool.FreeBlockCount);
        Assert.Throws<InvalidOperationException>(() => pool.Release(taken));
    }
}
