namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>The everyday nouns that list and counting questions are made of.</summary>
internal static class DemoWords
{
    public static readonly string[] All =
    [
        "apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum",
        "cat", "dog", "horse", "cow", "sheep", "goat", "mouse", "rabbit", "tiger", "lion",
        "red", "blue", "green", "yellow", "purple", "black", "white", "brown", "pink", "gray",
        "chair", "table", "lamp", "book", "pen", "cup", "plate", "spoon", "fork", "knife",
        "car", "bus", "train", "boat", "plane", "bike", "truck", "ship", "rocket", "taxi",
        "sun", "moon", "star", "cloud", "rain", "snow", "wind", "river", "lake", "hill",
        "bread", "cheese", "milk", "tea", "coffee", "rice", "soup", "cake", "egg", "salt",
        "door", "window", "house", "garden", "tree", "flower", "leaf", "rock", "sand", "road",
    ];

    /// <summary><paramref name="count"/> different words in random order.</summary>
    public static string[] Distinct(Random random, int count)
    {
        var chosen = new List<string>(count);
        while (chosen.Count < count)
        {
            string word = All[random.Next(All.Length)];
            if (!chosen.Contains(word))
            {
                chosen.Add(word);
            }
        }
        return chosen.ToArray();
    }
}
