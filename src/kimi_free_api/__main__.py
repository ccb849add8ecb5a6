from kimi_free_api.cli import main

main()
