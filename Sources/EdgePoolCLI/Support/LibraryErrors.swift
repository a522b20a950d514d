import ArgumentParser
import Benchmarks
import RSerPool
import TestbedRunner

/// Runs library code whose errors are the user's to fix: they print as ArgumentParser's
/// validation errors (message and usage, exit status 64), as when the code lived here.
func asValidation<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ValidationError {
        throw error
    } catch let error as TestbedError {
        throw ValidationError(error.description)
    } catch let error as BenchmarkError {
        throw ValidationError(error.description)
    } catch let error as ConfigurationError {
        throw ValidationError(error.description)
    }
}
