"""A parameter that nothing can supply is refused when the handler is registered."""

from tremolo import RegistrationError, Tremolo

app = Tremolo()

# --8<-- [start:missing]
try:
    @app.route('/profile')
    async def profile(user):  # no server name, path parameter or provider is called `user`
        return user
except RegistrationError as exc:
    print(exc)
# --8<-- [end:missing]
