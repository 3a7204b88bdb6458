import GenerationCore

/// What A1111's clients expect the server to remember between calls, kept per key (never for
/// everyone): the checkpoint a key picked with `POST /sdapi/v1/options`, and the key's generations
/// under way, for `GET /sdapi/v1/progress`.
///
/// In this process's memory: entries exist only for authenticated keys, which the admin creates,
/// so their number is bounded by the ledger's. A restart returns every key to the default checkpoint.
public actor A1111Sessions: CheckpointChoices {
    private var checkpoints: [String: String] = [:]
    private var running: [String: [Int: Generation]] = [:]
    private var nextID = 0
    /// Seconds per step and image, as recent generations of each model took.
    private var pace: [String: Double] = [:]
    private let clock = ContinuousClock()

    public init() {}

    struct Generation {
        let model: String
        let work: Double
        let started: ContinuousClock.Instant
    }

    public func checkpoint(of key: String) -> String? { checkpoints[key] }

    public func setCheckpoint(_ name: String, for key: String) { checkpoints[key] = name }

    /// Notes a generation of `steps` × `images` on `model` for `key`; its id for `finish`.
    func start(key: String, model: String, steps: Int, images: Int) -> Int {
        nextID &+= 1
        running[key, default: [:]][nextID] = Generation(model: model, work: Double(max(1, steps)) * Double(max(1, images)), started: clock.now)
        return nextID
    }

    func finish(_ id: Int, key: String, succeeded: Bool) {
        guard let generation = running[key]?.removeValue(forKey: id) else { return }
        if running[key]?.isEmpty == true { running[key] = nil }
        guard succeeded else { return }
        let seconds = (clock.now - generation.started).seconds
        // A moving average, so that a model's estimate follows its backend as it warms up or changes.
        pace[generation.model] = pace[generation.model].map { 0.7 * $0 + 0.3 * seconds / generation.work } ?? seconds / generation.work
    }

    /// The key's oldest generation under way: how far along it is estimated to be (0 to 1) and the
    /// seconds left; nil when the key has none. `count`: how many it has under way.
    func progress(of key: String) -> (fraction: Double, secondsLeft: Double, count: Int)? {
        guard let generations = running[key], let oldest = generations.values.min(by: { $0.started < $1.started }) else { return nil }
        // Until a model has run once here, a tenth of a second per step and image.
        let expected = oldest.work * (pace[oldest.model] ?? 0.1)
        let elapsed = (clock.now - oldest.started).seconds
        return (min(0.99, elapsed / max(expected, 0.001)), max(0, expected - elapsed), generations.count)
    }
}
