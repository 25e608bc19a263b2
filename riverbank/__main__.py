from riverbank.cli import main

main()
