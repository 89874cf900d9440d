namespace AsyncioRaw.Module;

/// <summary>
/// Typed arguments for module functions. The interop layer hands a function its positional
/// arguments already converted by <see cref="PyConvert.ToClr"/> (int → long, str → string, bytes →
/// byte[], anything else → PyObject); this turns each into the parameter's type with the same rules
/// as <see cref="PyObject.As{T}"/>. Runs inside the call from Python, so the GIL is held.
/// </summary>
internal static class Arguments
{
    /// <exception cref="ArgumentException">Wrong count (Python sees ValueError, as for the interop
    /// layer's own functions).</exception>
    internal static void ExpectCount(object?[] args, int count, string function)
    {
        if (args.Length != count)
            throw new ArgumentException($"{function}() takes {count} positional argument(s) but {args.Length} were given");
    }

    /// <exception cref="InvalidCastException">The argument has no conversion to <typeparamref name="T"/> (Python sees TypeError).</exception>
    internal static T To<T>(object?[] args, int index, string function)
    {
        object? value = args[index];
        if (value is T same) return same;
        if (value is null && default(T) is null) return default!;
        try
        {
            // The converted copy is all the body sees: release the argument's reference now rather
            // than when the .NET GC finalizes it (a large Python object would stay alive until then).
            if (value is PyObject obj)
                using (obj)
                    return obj.As<T>();
            using var py = PyConvert.ToPython(value);
            return py.As<T>();
        }
        catch (InvalidCastException e)
        {
            throw new InvalidCastException($"{function}() argument {index + 1}: {e.Message}", e);
        }
    }
}
