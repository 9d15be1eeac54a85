def install_sandbox_push():
    pass


def install_sandbox_todos():
    pass


def installed():
    return []
