import ArgumentParser
import CalcApp
import Benchmarks
import GatewayService
import PathManager
import PathManagerService
import RSerPool
import TestbedRunner

/// Runs library code whose errors are the user's to fix: they print as ArgumentParser's
/// validation errors (message and usage, exit status 64), as when the code lived here.
func asValidation<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw userError(error)
    }
}

/// The same for async library code (the daemons).
func asValidation<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw userError(error)
    }
}

private func userError(_ error: any Error) -> any Error {
    switch error {
    case let error as ValidationError: error
    case let error as TestbedError: ValidationError(error.description)
    case let error as BenchmarkError: ValidationError(error.description)
    case let error as ConfigurationError: ValidationError(error.description)
    case let error as CannotListenError: ValidationError(error.description)
    case let error as GatewayConfigurationError: ValidationError(error.description)
    case let error as ScenarioError: ValidationError(error.description)
    case let error as PathManagerError: ValidationError(error.description)
    case let error as NetlinkError: ValidationError("\(error)")
    case let error as EndpointFlagError: ValidationError("\(error)")
    default: error
    }
}
