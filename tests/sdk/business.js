// A business server as teams wrote them on the original wafer: Node's http
// module and Tencent's server SDK (qcloud-weapp-server-sdk, from the npm
// registry), pointed at wafer's /mina_auth/. tests/suite/original_sdk.rs
// runs it.
//
//   node business.js <port> <AuthServerUrl>
//
// GET /login  -> LoginService.login(): the SDK answers the mini-program
// GET /user   -> LoginService.check(): {"userInfo": ...}, or the SDK's error
'use strict';

const http = require('http');
const { config, LoginService } = require('qcloud-weapp-server-sdk');

const [port, authServerUrl] = process.argv.slice(2);
config({
    ServerHost: `127.0.0.1:${port}`,
    AuthServerUrl: authServerUrl,
    TunnelServerUrl: 'http://127.0.0.1:9/unused',
    TunnelSignatureKey: 'unused',
    NetworkTimeout: 5000,
});

http.createServer((req, res) => {
    const service = LoginService.create(req, res);
    if (req.url === '/login') {
        // The SDK writes the answer itself, error or not.
        service.login().catch(() => {});
    } else if (req.url === '/user') {
        service.check().then(
            data => {
                res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
                res.end(JSON.stringify({ code: 0, userInfo: data.userInfo }));
            },
            () => {} // the SDK wrote its error
        );
    } else {
        res.writeHead(404);
        res.end();
    }
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
