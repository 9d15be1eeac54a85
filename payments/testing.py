def install_sandbox():
    pass


def is_installed():
    return False
