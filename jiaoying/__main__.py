from jiaoying.cli import main

main()
