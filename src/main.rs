fn main() -> std::process::ExitCode {
    robot_token::main()
}
