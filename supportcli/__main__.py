from supportcli.cli import main

main()
