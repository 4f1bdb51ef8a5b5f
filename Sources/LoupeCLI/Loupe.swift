import ArgumentParser

@main
struct Loupe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loupe",
        abstract: "Loupe values diamonds: clean data, train a price model, and predict prices with calibrated ranges.",
        discussion: """
            With no data of your own, `loupe` uses the diamonds data bundled in the binary \
            (53,940 stones; see `loupe data --provenance`).
            """,
        subcommands: [
            ServeCommand.self, ServerCommand.self, GatewayCommand.self, TokenCommand.self, LogsCommand.self, DemoCommand.self, CleanCommand.self,
            IngestCommand.self, TrainCommand.self, ImportCommand.self, EvaluateCommand.self, PredictCommand.self,
            ModelsCommand.self, OutcomesCommand.self, JobsCommand.self, ReferenceCommand.self,
            TuneCommand.self, RetrainCommand.self, StatusCommand.self, ReportCommand.self, StoreCommand.self, DataCommand.self,
        ],
        defaultSubcommand: nil
    )
}
