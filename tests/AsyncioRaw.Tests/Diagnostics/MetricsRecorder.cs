using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace AsyncioRaw.Tests.Diagnostics;

/// <summary>A MeterListener that enables every instrument of the AsyncioRaw meter and keeps what
/// they report, with the reporting thread. Only this listener's instruments are enabled: other
/// listeners in the process are not disturbed.</summary>
internal sealed class MetricsRecorder : IDisposable
{
    internal sealed record Measurement(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags, int ThreadId, long Sequence);

    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<Measurement> _measurements = new();
    private long _sequence;

    internal MetricsRecorder()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == AsyncioRawDiagnostics.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
        _listener.Start();
    }

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, object?>();
        foreach (var tag in tags) copy[tag.Key] = tag.Value;
        _measurements.Enqueue(new Measurement(instrument.Name, value, copy, Environment.CurrentManagedThreadId, Interlocked.Increment(ref _sequence)));
    }

    internal IReadOnlyList<Measurement> Recorded(string instrument) =>
        _measurements.Where(m => m.Instrument == instrument).ToList();

    /// <summary>Collects the observable instruments now and returns what <paramref name="instrument"/> reported.</summary>
    internal IReadOnlyList<Measurement> Observe(string instrument)
    {
        long mark = Interlocked.Read(ref _sequence);
        _listener.RecordObservableInstruments(); // calls back on this thread, before it returns
        int self = Environment.CurrentManagedThreadId;
        return Recorded(instrument).Where(m => m.Sequence > mark && m.ThreadId == self).ToList();
    }

    /// <summary>The value <paramref name="instrument"/> observes now for the measurement tagged
    /// <paramref name="tag"/> = <paramref name="value"/> (untagged instruments: tag null).</summary>
    internal double ObserveOne(string instrument, string? tag = null, object? value = null)
    {
        var matching = Observe(instrument).Where(m => tag is null || Equals(m.Tags.GetValueOrDefault(tag), value)).ToList();
        Assert.That(matching, Has.Count.EqualTo(1), $"{instrument} {tag}={value}: one measurement expected");
        return matching[0].Value;
    }

    public void Dispose() => _listener.Dispose();
}
